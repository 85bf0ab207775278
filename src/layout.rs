//! The standing rules of README's "How it is built", checked on the source tree: no import
//! circle among the middle layer's modules, `node.rs` at most 350 lines, no file in `src/`
//! over 450 lines, `realize/` importing nothing from `tweets/`, at most 6 integration test
//! binaries.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
/// The pure core's sources (workspace crate `core/`).
const CORE_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/core/src");
const TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");

/// The middle layer's modules: a module is its file and the directory of its submodules.
const LAYER: [&str; 6] = ["node", "peer", "replica", "replicas", "realize", "stage"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_files(module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = Path::new(SRC).join(format!("{module}.rs"));
    if file.exists() {
        files.push(file);
    }
    let dir = Path::new(SRC).join(module);
    if dir.is_dir() {
        rust_files(&dir, &mut files);
    }
    files
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The modules of `names` that `text` names by a `crate::` path.
fn named<'a>(text: &str, names: &[&'a str]) -> BTreeSet<&'a str> {
    names
        .iter()
        .copied()
        .filter(|name| {
            let path = format!("crate::{name}");
            text.match_indices(&path).any(|(at, _)| {
                let next = text[at + path.len()..].chars().next();
                !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        })
        .collect()
}

/// A cycle in `edges`, if there is one, as the modules along it.
fn cycle<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        at: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(start) = path.iter().position(|m| *m == at) {
            let mut found = path[start..].to_vec();
            found.push(at);
            return Some(found);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at);
        for next in edges.get(at).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(at);
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_middle_layer_has_no_import_circle() {
    let mut edges = BTreeMap::new();
    for module in LAYER {
        let mut uses = BTreeSet::new();
        for file in module_files(module) {
            uses.extend(named(&read(&file), &LAYER));
        }
        uses.remove(module);
        edges.insert(module, uses);
    }
    assert_eq!(cycle(&edges), None, "imports among {LAYER:?}: {edges:?}");
}

#[test]
fn a_cycle_is_found_and_a_tree_is_not() {
    let mut edges = BTreeMap::from([
        ("a", BTreeSet::from(["b"])),
        ("b", BTreeSet::from(["c"])),
        ("c", BTreeSet::new()),
    ]);
    assert_eq!(cycle(&edges), None);
    edges.insert("c", BTreeSet::from(["a"]));
    assert_eq!(cycle(&edges), Some(vec!["a", "b", "c", "a"]));
    assert_eq!(
        named(
            "use crate::replicas::X; crate::replica_x",
            &["replica", "replicas"]
        ),
        BTreeSet::from(["replicas"])
    );
}

#[test]
fn files_stay_small_and_node_only_assembles() {
    let mut files = Vec::new();
    rust_files(Path::new(SRC), &mut files);
    rust_files(Path::new(CORE_SRC), &mut files);
    let mut long = Vec::new();
    for file in &files {
        let lines = read(file).lines().count();
        let limit = if file.ends_with("node.rs") { 350 } else { 450 };
        if lines > limit {
            long.push(format!("{}: {lines} lines (limit {limit})", file.display()));
        }
    }
    assert!(long.is_empty(), "files over their limit: {long:#?}");
}

#[test]
fn realize_knows_no_tweets() {
    for file in module_files("realize") {
        let text = read(&file);
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            named(&code, &["tweets"]).is_empty(),
            "{} imports from tweets/",
            file.display()
        );
    }
}

#[test]
fn at_most_six_integration_test_binaries() {
    let entries = fs::read_dir(TESTS).expect("reading tests/");
    let binaries: Vec<String> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| {
            (p.is_file() && p.extension().is_some_and(|e| e == "rs"))
                || (p.is_dir() && p.join("main.rs").exists())
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        binaries.len() <= 6,
        "{} test binaries: {binaries:#?}",
        binaries.len()
    );
}

/// DESIGN §15: the core builds for the browser, so nothing in it reaches an actor runtime, an
/// async runtime, a store, SQLite or the filesystem (its `native` feature adds only the C zstd
/// encoder and the operating system's random source).
#[test]
fn the_core_has_no_runtime_store_or_filesystem() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "replikativ-core",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--features", "native", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("blake3"), "not the core's tree: {tree}");
    let forbidden = [
        "actix",
        "tokio",
        "redb",
        "rusqlite",
        "libsqlite3",
        "postgres",
        "mio",
    ];
    let found: Vec<&str> = tree
        .lines()
        .filter(|l| forbidden.iter().any(|f| l.starts_with(f)))
        .collect();
    assert!(found.is_empty(), "the core depends on {found:?}");
    let mut files = Vec::new();
    rust_files(Path::new(CORE_SRC), &mut files);
    let io = [
        "std::fs",
        "std::net",
        "std::process",
        "std::thread::spawn",
        "Instant::now",
    ];
    let mut uses = Vec::new();
    for file in &files {
        let text = read(file);
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        uses.extend(
            io.iter()
                .filter(|p| code.contains(*p))
                .map(|p| format!("{}: {p}", file.display())),
        );
    }
    assert!(uses.is_empty(), "I/O in the core: {uses:#?}");
}
