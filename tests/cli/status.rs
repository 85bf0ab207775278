//! `replikativ status URL`: a running peer's tree, connections and CDVCSs from its
//! `/status.json`, as text and as one JSON line; an unreachable node exits 1.

use std::time::Duration;

use crate::common::cli_support::{Proc, arg};
use crate::common::*;

#[test]
fn status_shows_a_running_peer_and_fails_on_an_unreachable_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let source = data_dir().join("brexit.jsonl");
    run_ok(
        &[
            "collect",
            "--store",
            "s",
            "--source",
            arg(&source),
            "--batch",
            "10",
        ],
        cwd,
    );
    let log = run_json(&["log", "--store", "s"], cwd);
    let commits = log["commits"].as_u64().expect("commits");
    let node_key = run_ok(&["id", "--store", "s"], cwd);
    let node_key = node_key.lines().last().expect("key").to_owned();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut peer = Proc::spawn(
        &["peer", "--store", "s", "--listen", &listen],
        cwd,
        "peer.log",
    );
    wait_port(port, Duration::from_secs(30));
    let url = format!("ws://{listen}/");

    let status = run_json(&["status", &url], cwd);
    assert_eq!(status["node"], node_key.as_str());
    let cdvcs = status["cdvcs"].as_array().expect("cdvcs");
    assert_eq!(cdvcs.len(), 1, "{status}");
    assert_eq!(cdvcs[0]["commits"].as_u64(), Some(commits));
    assert_eq!(cdvcs[0]["user"], "mail:twitter@crawler.com");

    let text = run_ok(&["status", &format!("http://{listen}")], cwd);
    assert!(text.contains(&format!("node {node_key}")), "{text}");
    assert!(text.contains(&format!("{commits} commits")), "{text}");
    assert!(
        text.contains("supervision tree") && text.contains("store running"),
        "{text}"
    );

    peer.terminate_ok("peer", &cwd.join("peer.log"));
    let gone = run(&["status", &url], cwd);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    let usage = run(&["status", "ftp://x/"], cwd);
    assert_eq!(usage.status.code(), Some(2));
}
