//! `replikativ compact`: a store with freed pages (one commit per tweet) shrinks, keeps every
//! commit and value (verify, log and the tweet ids against the source), and a store in use by
//! a running node is refused.

use std::time::Duration;

use crate::common::cli_support::{Proc, arg};
use crate::common::*;

#[test]
fn compact_gives_back_free_pages_and_keeps_everything() {
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
            "1",
        ],
        cwd,
    );
    let lines = tweets_oracle::lines_of(&source);
    let oracle: std::collections::BTreeMap<String, u64> = tweets_oracle::source_tweets(&lines)
        .into_keys()
        .map(|id| (id, 1))
        .collect();
    assert!(!oracle.is_empty());
    let log_before = run_json(&["log", "--store", "s"], cwd);
    let file = cwd.join("s").join("store.redb");
    let before = std::fs::metadata(&file).expect("size").len();
    let said = run_ok(&["compact", "--store", "s"], cwd);
    let after = std::fs::metadata(&file).expect("size").len();
    assert!(
        said.contains(&format!("{before} -> {after} bytes")),
        "{said}"
    );
    // A hundred durable commits leave freed pages behind; compaction returns them.
    assert!(after < before, "{before} -> {after}");
    run_ok(&["verify", "--store", "s"], cwd);
    assert_eq!(run_json(&["log", "--store", "s"], cwd), log_before);
    assert_eq!(
        committed::store_tweet_ids(&cwd.join("s")),
        oracle,
        "every tweet of the source is still stored, once"
    );

    // A running node holds the store: compact is refused and changes nothing.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut peer = Proc::spawn(
        &["peer", "--store", "s", "--listen", &listen],
        cwd,
        "peer.log",
    );
    wait_port(port, Duration::from_secs(30));
    let refused = run(&["compact", "--store", "s"], cwd);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    peer.terminate_ok("peer", &cwd.join("peer.log"));
    run_ok(&["verify", "--store", "s"], cwd);
}
