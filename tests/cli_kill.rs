//! SIGKILL at random moments, then restart until done (DESIGN §7, §8): `collect` from a file
//! loses and doubles nothing; `analyze` applies every record exactly once. At least 20 kills
//! each, also under `CI` (`REPLIKATIV_LONG=N` runs N).

mod common;

use std::path::Path;
use std::time::Duration;

use rand::Rng as _;

use common::cli_support::{Proc, account_ops, arg, query_json, tail};
use common::tweets_oracle::{Expected, shipped_source, write_lines};
use common::{data_dir, free_port, iterations, run_json, run_ok, wait_exit, wait_port};

/// Restarts a run allowed before a round counts as stuck.
const MAX_RESTARTS: usize = 300;

/// Runs `args` until it exits by itself, SIGKILLing it after a random delay in `delay_ms`
/// each time it is still running; returns how many kills landed.
fn kill_until_done(
    args: &[&str],
    cwd: &Path,
    log: &str,
    delay_ms: std::ops::Range<u64>,
    what: &str,
) -> usize {
    let mut rng = rand::rng();
    let mut kills = 0;
    for _ in 0..MAX_RESTARTS {
        let mut p = Proc::spawn(args, cwd, log);
        let delay = Duration::from_millis(rng.random_range(delay_ms.clone()));
        match wait_exit(&mut p.child, delay) {
            Some(status) => {
                assert_eq!(
                    status.code(),
                    Some(0),
                    "{what} exited {status:?}; log:\n{}",
                    tail(&cwd.join(log))
                );
                return kills;
            }
            None => {
                common::kill(&mut p.child);
                kills += 1;
            }
        }
    }
    panic!(
        "{what} did not finish within {MAX_RESTARTS} restarts; log:\n{}",
        tail(&cwd.join(log))
    );
}

#[test]
fn collect_killed_at_random_moments_and_restarted_commits_every_tweet_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let exp = Expected::of(&lines, "obama");
    let target = iterations(30, 20).max(20);
    let mut kills = 0;
    let mut round = 0;
    while kills < target {
        round += 1;
        let store = d.join(format!("store-{round}"));
        // Small batches and a short flush interval: kills land while pages are half
        // committed.
        kills += kill_until_done(
            &[
                "collect",
                "--store",
                arg(&store),
                "--source",
                arg(&src),
                "--batch",
                "7",
                "--flush-ms",
                "20",
            ],
            d,
            &format!("collect-{round}.log"),
            0..450,
            "collect",
        );
        let log = run_json(&["log", "--store", arg(&store)], d);
        assert_eq!(
            log["transactions"].as_u64(),
            Some(exp.records),
            "round {round} after {kills} kills: {log}"
        );
        assert_eq!(log["heads"].as_array().map(Vec::len), Some(1), "{log}");
        run_ok(&["verify", "--store", arg(&store)], d);
    }
    eprintln!("collect: {kills} kills over {round} rounds");
}

#[test]
fn analyze_killed_at_random_moments_and_restarted_applies_every_record_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let exp = Expected::of(&lines, "obama");
    let store = d.join("collector");
    // Many small commits: kills land between and inside realizer transactions.
    run_ok(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            arg(&src),
            "--batch",
            "3",
            "--flush-ms",
            "20",
        ],
        d,
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _peer = Proc::spawn(
        &["peer", "--store", arg(&store), "--listen", &listen],
        d,
        "peer.log",
    );
    wait_port(port, Duration::from_secs(30));
    let url = format!("ws://127.0.0.1:{port}/");

    let target = iterations(30, 20).max(20);
    let mut kills = 0;
    let mut round = 0;
    while kills < target {
        round += 1;
        let db = d.join(format!("a-{round}.sqlite"));
        kills += kill_until_done(
            &[
                "analyze",
                "--store",
                arg(&d.join(format!("analysis-{round}"))),
                "--connect",
                &url,
                "--sqlite",
                arg(&db),
                "--timeout",
                "30",
            ],
            d,
            &format!("analyze-{round}.log"),
            0..900,
            "analyze",
        );
        let stats = query_json(d, &db, &["stats"]);
        assert_eq!(
            stats["ops_applied"].as_u64(),
            Some(exp.records),
            "round {round} after {kills} kills: {stats}"
        );
        assert_eq!(stats["tweets"].as_u64(), Some(exp.distinct), "{stats}");
        assert_eq!(
            account_ops(&db),
            exp.per_author,
            "round {round}: per-account op counts differ from the per-author records"
        );
    }
    eprintln!("analyze: {kills} kills over {round} rounds");
}
