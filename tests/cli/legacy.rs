//! A store written before commits were signed (`tests/fixtures/pre-signing-store`, also of
//! store format 1, before packs) is refused until `upgrade` rewrites it; then it opens,
//! attributes its commits to `unsigned`, and replicates to a node that signs.

use std::path::Path;
use std::time::Duration;

use crate::common::cli_support::analyze_once;
use crate::common::*;

fn fixture(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pre-signing-store");
    std::fs::copy(from.join("store.redb"), to.join("store.redb")).expect("copy the fixture");
}

#[test]
fn a_store_from_before_signing_opens_and_replicates_as_unsigned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    fixture(&cwd.join("old"));
    let refused = run(&["log", "--store", "old"], cwd);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("has format version 1")
            && stderr.contains("replikativ upgrade --store old"),
        "{stderr}"
    );
    let upgraded = run_ok(&["upgrade", "--store", "old"], cwd);
    assert!(upgraded.contains("verified"), "{upgraded}");
    let log = run_json(&["log", "--store", "old"], cwd);
    assert_eq!(log["transactions"], 100, "{log}");
    assert_eq!(log["authors"], serde_json::json!({ "unsigned": 100 }));
    run_ok(&["verify", "--store", "old"], cwd);

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut peer = spawn(
        &["peer", "--store", "old", "--listen", &listen],
        cwd,
        "peer.log",
    );
    wait_port(port, Duration::from_secs(30));
    let out = analyze_once(cwd, &cwd.join("new"), port, &cwd.join("t.sqlite"));
    terminate(&peer);
    wait_exit(&mut peer, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "analyze: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(cwd.join("t.sqlite")).expect("sqlite");
    let by: Vec<(String, i64)> = conn
        .prepare("SELECT commit_author, COUNT(*) FROM tweets GROUP BY commit_author")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(by, [("unsigned".to_owned(), 100)]);
}
