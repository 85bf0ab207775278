//! `keygen`, `id` and a node's own key (DESIGN §11 identity), with the real binary.

use std::path::Path;

use crate::common::cli_support::arg;
use crate::common::*;

fn last_line(out: &str) -> &str {
    out.lines().last().unwrap_or_default()
}

fn looks_like_a_key(text: &str) -> bool {
    text.strip_prefix("ed25519:").is_some_and(|k| {
        k.len() == 43
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[test]
fn keygen_writes_a_private_key_once_and_id_reads_it_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let out = run_ok(&["keygen", "--out", "a.pem"], cwd);
    let public = last_line(&out).to_owned();
    assert!(looks_like_a_key(&public), "{public:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(cwd.join("a.pem"))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is private");
    }
    let before = std::fs::read(cwd.join("a.pem")).expect("read");
    let again = run(&["keygen", "--out", "a.pem"], cwd);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing key is never overwritten"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
    assert_eq!(std::fs::read(cwd.join("a.pem")).expect("read"), before);

    assert_eq!(last_line(&run_ok(&["id", "--key", "a.pem"], cwd)), public);
    let json = run_json(&["id", "--key", "a.pem"], cwd);
    assert_eq!(json, serde_json::json!({ "public_key": public }));
    let made = run_json(&["keygen", "--out", "b.pem"], cwd);
    let b = made["public_key"].as_str().expect("a key");
    assert!(looks_like_a_key(b) && b != public, "{made}");
}

#[test]
fn id_of_a_store_is_its_node_key_made_on_first_start_and_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let none = run(&["id", "--store", "s"], cwd);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("has no key"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    let source = data_dir().join("flat.jsonl");
    let collect = |store: &str| {
        run_ok(
            &[
                "collect",
                "--store",
                store,
                "--source",
                arg(&source),
                "--flush-ms",
                "200",
            ],
            cwd,
        )
    };
    collect("s");
    let first = last_line(&run_ok(&["id", "--store", "s"], cwd)).to_owned();
    assert!(looks_like_a_key(&first), "{first:?}");
    collect("s");
    assert_eq!(
        last_line(&run_ok(&["id", "--store", "s"], cwd)),
        first,
        "the node keeps its key across runs"
    );
    // Its commits are its own: `log` attributes every transaction to that key.
    let log = run_json(&["log", "--store", "s"], cwd);
    let transactions = log["transactions"].as_u64().expect("transactions");
    assert!(transactions > 0, "{log}");
    assert_eq!(
        log["authors"],
        serde_json::json!({ first.clone(): transactions })
    );
    assert_eq!(log["grants"], 0);
    // --key: the node runs as that key and makes no node.key of its own.
    run_ok(&["keygen", "--out", "k.pem"], cwd);
    collect_with_key(cwd, "t", &source);
    assert!(!Path::new(cwd).join("t/node.key").exists());
    let bad = run(
        &[
            "collect",
            "--store",
            "u",
            "--source",
            arg(&source),
            "--key",
            "missing.pem",
        ],
        cwd,
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing.pem"));
}

fn collect_with_key(cwd: &Path, store: &str, source: &Path) {
    run_ok(
        &[
            "collect",
            "--store",
            store,
            "--source",
            arg(source),
            "--key",
            "k.pem",
        ],
        cwd,
    );
}
