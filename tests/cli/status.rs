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

    // A fresh peer's /metrics: every series of what it holds, at its values.
    let (code, metrics) = crate::common::http::get(listen.parse().expect("addr"), "/metrics", None);
    assert_eq!(code, 200, "{metrics}");
    let commits_metric = crate::common::http::metric(&metrics, "replikativ_commits", None);
    assert_eq!(commits_metric, Some(commits as f64), "{metrics}");
    for series in [
        "replikativ_heads",
        "replikativ_peers_connected",
        "replikativ_bytes_sent_total",
        "replikativ_bytes_received_total",
        "replikativ_child_restarts_total",
        "replikativ_store_commit_seconds",
    ] {
        assert!(
            crate::common::http::metric(&metrics, series, None).is_some(),
            "{series} missing:\n{metrics}"
        );
    }

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

/// A following collector's `/metrics` count what it collected and skipped (oracle: the source
/// file's distinct tweet ids and the one line we made unreadable), and its store's commits.
#[test]
fn a_collectors_metrics_count_its_source() {
    use crate::common::http::{get, metric};
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let mut lines = tweets_oracle::lines_of(&data_dir().join("flat.jsonl"));
    let tweets = tweets_oracle::source_tweets(&lines).len() as f64;
    lines.insert(3, b"this line is not JSON".to_vec());
    let source = cwd.join("source.jsonl");
    tweets_oracle::write_lines(&source, &lines);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut collector = Proc::spawn(
        &[
            "collect",
            "--store",
            "s",
            "--source",
            arg(&source),
            "--follow",
            "--flush-ms",
            "50",
            "--batch",
            "100",
            "--listen",
            &listen,
        ],
        cwd,
        "collect.log",
    );
    wait_port(port, Duration::from_secs(30));
    let addr = listen.parse().expect("addr");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let text = loop {
        let (code, text) = get(addr, "/metrics", None);
        assert_eq!(code, 200, "{text}");
        if metric(&text, "replikativ_collected_tweets_total", None) == Some(tweets) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "collected tweets never reached {tweets}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        metric(&text, "replikativ_skipped_lines_total", None),
        Some(1.0)
    );
    let commits = metric(&text, "replikativ_commits", None).expect("commits series");
    assert!(
        commits >= (tweets / 100.0).ceil(),
        "{commits} commits for {tweets} tweets"
    );
    assert!(metric(&text, "replikativ_store_commit_seconds", None).is_some_and(|n| n >= commits));
    collector.terminate_ok("collector", &cwd.join("collect.log"));
    let log = run_json(&["log", "--store", "s"], cwd);
    assert_eq!(log["commits"].as_f64(), Some(commits), "{log}");
    assert_eq!(log["transactions"].as_f64(), Some(tweets), "{log}");
}

/// `analyze --follow --listen`: an analysis node serves its status and metrics; its realizer
/// counts every tweet of the source once (oracle: the source's distinct tweet ids).
#[test]
fn an_analyzer_listening_shows_its_realizer() {
    use crate::common::http::{get, metric};
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let source = data_dir().join("brexit.jsonl");
    let lines = tweets_oracle::lines_of(&source);
    let tweets = tweets_oracle::source_tweets(&lines).len() as f64;
    let (p1, p2) = (free_port(), free_port());
    let (l1, l2) = (format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}"));
    let mut collector = Proc::spawn(
        &[
            "collect",
            "--store",
            "c",
            "--source",
            arg(&source),
            "--follow",
            "--listen",
            &l1,
        ],
        cwd,
        "collect.log",
    );
    wait_port(p1, Duration::from_secs(30));
    let url = format!("ws://{l1}/");
    let mut analyzer = Proc::spawn(
        &[
            "analyze",
            "--store",
            "a",
            "--connect",
            &url,
            "--sqlite",
            "a.sqlite",
            "--follow",
            "--listen",
            &l2,
        ],
        cwd,
        "analyze.log",
    );
    wait_port(p2, Duration::from_secs(30));
    let addr = l2.parse().expect("addr");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (code, text) = get(addr, "/metrics", None);
        assert_eq!(code, 200, "{text}");
        let realized = metric(
            &text,
            "replikativ_realized_ops_total",
            Some(("realizer", "sqlite")),
        );
        if realized == Some(tweets) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "realized {realized:?} of {tweets}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = run_json(&["status", &format!("http://{l2}/")], cwd);
    let realizers = status["realizers"].as_array().expect("realizers");
    assert_eq!(realizers.len(), 1, "{status}");
    assert_eq!(realizers[0]["name"], "sqlite");
    assert_eq!(realizers[0]["ops_applied"].as_f64(), Some(tweets));
    let peers = status["connections"].as_array().expect("connections");
    assert_eq!(peers.len(), 1, "{status}");
    assert_eq!(peers[0]["dialled"], true);
    analyzer.terminate_ok("analyze", &cwd.join("analyze.log"));
    collector.terminate_ok("collector", &cwd.join("collect.log"));
    assert_eq!(
        crate::common::cli_support::ops_applied(cwd, &cwd.join("a.sqlite")),
        Some(tweets as u64)
    );
}
