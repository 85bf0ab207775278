//! A relay peer in an A–B–C chain killed with SIGKILL at random moments (issue 8): the
//! collector A keeps committing a growing file, the relay B is killed and restarted again and
//! again, the analyzer C follows B. Afterwards every tweet is present once in every store, all
//! three replicas have equal heads, and C's sink applied every op exactly once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::common::cli_support::{Proc, account_ops, arg, ops_applied, tail};
use crate::common::committed::{sqlite_tweet_ids, store_tweet_ids};
use crate::common::tweets_oracle::{Expected, check_each_once, shipped_source, source_tweets};
use crate::common::wait::periodic_check;
use crate::common::{data_dir, free_port, iterations, run_json, wait_port};
use rand::Rng;

fn append(path: &Path, lines: &[Vec<u8>]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open source");
    let mut all = Vec::new();
    for l in lines {
        all.extend_from_slice(l);
        all.push(b'\n');
    }
    f.write_all(&all).expect("append");
}

#[test]
fn a_relay_killed_at_random_moments_loses_and_doubles_nothing_between_collector_and_analyzer() {
    relay_chain(false, iterations(30, 20).max(20));
}

/// The same chain over `wss://` (every hop TLS, verified with the test CA), with fewer kills.
#[test]
fn a_relay_killed_at_random_moments_over_tls_loses_and_doubles_nothing() {
    relay_chain(true, iterations(12, 8).max(8));
}

fn relay_chain(tls: bool, kills: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let exp = Expected::of(&lines, "obama");
    let pki = tls.then(|| crate::tls::pki(d));
    // Listening with the test certificate; dialling trusting the test CA.
    let serve: Vec<String> = pki
        .iter()
        .flat_map(|p| {
            [
                "--tls-cert".into(),
                arg(&p.cert).to_owned(),
                "--tls-key".into(),
                arg(&p.key).to_owned(),
            ]
        })
        .collect();
    let trust: Vec<String> = pki
        .iter()
        .flat_map(|p| ["--ca".into(), arg(&p.ca).to_owned()])
        .collect();
    let (scheme, host) = if tls {
        ("wss", "localhost")
    } else {
        ("ws", "127.0.0.1")
    };
    let chunk = lines.len().div_ceil(kills).max(1);
    let mut chunks = lines.chunks(chunk);
    let src = d.join("source.jsonl");
    append(&src, chunks.next().expect("a first chunk"));

    let (pa, pb) = (free_port(), free_port());
    let (store_a, store_b, store_c) = (d.join("a"), d.join("b"), d.join("c"));
    let db = d.join("c.sqlite");
    let listen_a = format!("127.0.0.1:{pa}");
    let listen_b = format!("127.0.0.1:{pb}");
    let (url_a, url_b) = (
        format!("{scheme}://{host}:{pa}/"),
        format!("{scheme}://{host}:{pb}/"),
    );
    let with = |base: &[&str], extra: &[&Vec<String>]| -> Vec<String> {
        let mut all: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        for e in extra {
            all.extend(e.iter().cloned());
        }
        all
    };
    let relay_owned = with(
        &[
            "peer",
            "--store",
            arg(&store_b),
            "--listen",
            &listen_b,
            "--connect",
            &url_a,
        ],
        &[&serve, &trust],
    );
    let relay_args: Vec<&str> = relay_owned.iter().map(String::as_str).collect();
    let collect = with(
        &[
            "collect",
            "--store",
            arg(&store_a),
            "--source",
            arg(&src),
            "--listen",
            &listen_a,
            "--follow",
            "--batch",
            "5",
            "--flush-ms",
            "20",
        ],
        &[&serve],
    );
    let collect: Vec<&str> = collect.iter().map(String::as_str).collect();
    let mut a = Proc::spawn(&collect, d, "a.log");
    wait_port(pa, Duration::from_secs(30));
    let mut b = Proc::spawn(&relay_args, d, "b.log");
    wait_port(pb, Duration::from_secs(30));
    let analyze = with(
        &[
            "analyze",
            "--store",
            arg(&store_c),
            "--connect",
            &url_b,
            "--sqlite",
            arg(&db),
            "--follow",
        ],
        &[&trust],
    );
    let analyze: Vec<&str> = analyze.iter().map(String::as_str).collect();
    let mut c = Proc::spawn(&analyze, d, "c.log");

    let mut rng = rand::rng();
    let source = source_tweets(&lines);
    let total = source.len() as u64;
    // A kill counts when it landed while tweets were still flowing to C through B.
    // Under load, fewer kills may land mid-flow: up to twice as many extra rounds are run
    // (while C still catches up) until three have.
    let (mut mid_way, mut before, mut round) = (0, 0, 0);
    while round < kills || (mid_way < 3 && round < 3 * kills && before < total) {
        round += 1;
        if let Some(next) = chunks.next() {
            append(&src, next);
        }
        // A random moment: while B is dialling A, catching up, or relaying to C.
        std::thread::sleep(Duration::from_millis(rng.random_range(20..400)));
        crate::common::kill(&mut b.child);
        let now = ops_applied(d, &db).unwrap_or(0);
        if now > before && now < total {
            mid_way += 1;
        }
        before = now;
        b = Proc::spawn(&relay_args, d, "b.log");
        assert!(
            periodic_check(
                || std::net::TcpStream::connect(("127.0.0.1", pb)).is_ok(),
                Duration::from_secs(30)
            ),
            "round {round}: the relay did not listen again; log:\n{}",
            tail(&d.join("b.log"))
        );
    }
    for rest in chunks {
        append(&src, rest);
    }
    assert!(
        periodic_check(
            || ops_applied(d, &db) == Some(exp.records),
            Duration::from_secs(180)
        ),
        "C realized {:?} ops, expected {}; c.log:\n{}\nb.log:\n{}",
        ops_applied(d, &db),
        exp.records,
        tail(&d.join("c.log")),
        tail(&d.join("b.log"))
    );
    c.terminate_ok("analyze", &d.join("c.log"));
    a.terminate_ok("collect", &d.join("a.log"));
    b.terminate_ok("relay", &d.join("b.log"));

    let logs: Vec<serde_json::Value> = [&store_a, &store_b, &store_c]
        .iter()
        .map(|s| run_json(&["log", "--store", arg(s)], d))
        .collect();
    for ((name, log), store) in ["A", "B", "C"]
        .iter()
        .zip(&logs)
        .zip([&store_a, &store_b, &store_c])
    {
        if let Err(e) = check_each_once(source.keys(), &store_tweet_ids(store)) {
            panic!("store {name}: {e}");
        }
        assert_eq!(log["heads"], logs[0]["heads"], "{name} has A's heads");
    }
    let realized: BTreeMap<String, u64> = sqlite_tweet_ids(&db)
        .into_iter()
        .map(|id| (id, 1))
        .collect();
    if let Err(e) = check_each_once(source.keys(), &realized) {
        panic!("C's SQLite: {e}");
    }
    assert_eq!(
        account_ops(&db),
        exp.per_author,
        "each op applied exactly once"
    );
    eprintln!("relay ({scheme}): {round} kills, {mid_way} while tweets were flowing");
    assert!(
        mid_way >= 3,
        "kills should land while tweets flow through the relay: {mid_way} of {round}"
    );
}
