//! The committed build of the browser peer (`web/pkg`) is the build of today's sources: its
//! `STAMP` is a BLAKE3 hash of the core's and this crate's sources and manifests, the locked
//! versions of every crate in the wasm build (`cargo tree`, from `Cargo.lock`), and the
//! wasm-bindgen version. `web/build.sh` rebuilds `web/pkg` and writes the stamp
//! (`WRITE_STAMP=1`); here it is checked, not the bytes of the build (which differ between
//! machines).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn stamp() -> String {
    let root = root();
    let mut inputs = vec![root.join("core/Cargo.toml"), root.join("web/Cargo.toml")];
    files(&root.join("core/src"), &mut inputs);
    files(&root.join("web/src"), &mut inputs);
    let mut hasher = blake3::Hasher::new();
    for path in &inputs {
        let name = path.strip_prefix(&root).expect("under the root");
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tree = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "replikativ-web",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "--locked",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo tree runs");
    assert!(
        tree.status.success(),
        "cargo tree: {}",
        String::from_utf8_lossy(&tree.stderr)
    );
    // Paths of local crates differ between clones; names and versions do not.
    let mut lines: Vec<String> = String::from_utf8_lossy(&tree.stdout)
        .lines()
        .map(|l| l.split(" (").next().unwrap_or(l).trim().to_string())
        .collect();
    lines.sort();
    lines.dedup();
    hasher.update(lines.join("\n").as_bytes());
    let bindgen = lines
        .iter()
        .find(|l| l.starts_with("wasm-bindgen v"))
        .expect("wasm-bindgen in the tree")
        .clone();
    format!("{}\n{bindgen}\n", hasher.finalize().to_hex())
}

#[test]
fn the_committed_build_is_of_these_sources() {
    let path = root().join("web/pkg/STAMP");
    let now = stamp();
    if std::env::var_os("WRITE_STAMP").is_some() {
        std::fs::write(&path, &now).expect("writing the stamp");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed, now,
        "web/pkg is stale: the browser peer's sources, dependencies or wasm-bindgen changed \
         since it was built; run web/build.sh (it needs wasm-bindgen-cli of the version named) \
         and commit web/pkg"
    );
}
