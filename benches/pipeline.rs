//! The whole pipeline, measured through the real paths (plain timing, `harness = false`):
//! 1. ingest: tweets/s into a node's CDVCS with durable commits of 1,000 tweets, vs raw redb;
//! 2. replication of those tweets to an empty peer over loopback websockets, vs a raw
//!    websocket transfer of the same bytes;
//! 3. reconnect after a restart with 0/10/1,000 new commits over growing histories, with and
//!    without the persisted per-peer hint: bytes beyond the payload, start and sync time;
//! 4. peak RSS of ingest + live replication (child processes), vs raw redb;
//! 5. the handshake: time to connect and authenticate to a listener, and the payload of a
//!    reconnect with nothing new, over `ws://` and `wss://` (runs with `reconnect`, or alone
//!    as `handshake`);
//! 6. signed history (`signed`): ingest, replication, and catch-up of one-tweet commits, with
//!    signed and with unsigned commits in the same run, rounds alternating the order (3 rounds
//!    of 10^5 tweets and 10^5 one-tweet commits; quick: 1 round of 5,000 and 1,000;
//!    `BENCH_ROUNDS` and `BENCH_COMMITS` override the rounds and the one-tweet commits);
//! 7. many CDVCSs per node (`mirror`): start time and RSS of a node holding 10^4 CDVCSs of 10
//!    commits, a mirror's catch-up over one connection, reconnect bytes (quick: 10^3).
//! 8. start-up (`startup`): node start and `replikativ peer` start on stores of 10^3, 10^5 and
//!    10^6 one-tweet commits (quick: 10^2, 10^3, 10^4), 5 runs each (quick: 3), median;
//!    `owned`: the same sizes of an owned CDVCS, the writer rule ready from its stored
//!    records and a granted key's first commit, against judging the whole history.
//! 9. the browser peer (`browser`): the wasm size, a headless Chromium's catch-up of 10^4
//!    tweets (quick: 10^3) against a native node's in the same run, bytes and wasm heap.
//!
//! `BENCH_QUICK=1`: 5,000 tweets (10^4 for peak RSS), histories 10 and 10^3 (seconds, for CI). Default: 10^5
//! tweets, histories to 10^5. `BENCH_FULL=1`: 10^6 tweets and a 10^6-commit history.
//! Each scenario prints a Markdown table; the figures in BENCHMARKS.md come from it.

#[path = "pipeline/browser.rs"]
mod browser;
#[path = "pipeline/common.rs"]
mod common;
#[path = "pipeline/handshake.rs"]
mod handshake;
#[path = "pipeline/ingest.rs"]
mod ingest;
#[path = "pipeline/memory.rs"]
mod memory;
#[path = "pipeline/metrics_cost.rs"]
mod metrics_cost;
#[path = "pipeline/mirror.rs"]
mod mirror;
#[path = "pipeline/reconnect.rs"]
mod reconnect;
#[path = "pipeline/replication.rs"]
mod replication;
#[path = "pipeline/signed.rs"]
mod signed;
#[path = "pipeline/startup.rs"]
mod startup;

use std::path::PathBuf;
use std::process::Command;

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("({cmd}: {e})"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss") {
        let mode = args.get(i + 1).map(String::as_str).unwrap_or("node");
        if mode == "mirror-start" {
            mirror::child(&PathBuf::from(
                args.get(i + 3).map(String::as_str).unwrap_or("."),
            ));
            return;
        }
        if mode == "mirror-build" {
            // `--rss mirror-build N DIR`: only writes the N-CDVCS store (to time starts alone).
            let n = args
                .get(i + 2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(10_000);
            let dir = PathBuf::from(args.get(i + 3).map(String::as_str).unwrap_or("."));
            let signer = replikativ::identity::Keypair::generate().expect("a key");
            mirror::build(&dir, n, 10, &signer);
            return;
        }
        let n = args
            .get(i + 2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        let dir = PathBuf::from(args.get(i + 3).map(String::as_str).unwrap_or("."));
        memory::child(mode, n, &dir);
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let full = std::env::var_os("BENCH_FULL").is_some();
    let tweets = match (quick, full) {
        (true, _) => 5_000,
        (false, false) => 100_000,
        (false, true) => 1_000_000,
    };
    let histories: Vec<usize> = match (quick, full) {
        (true, _) => vec![10, 1_000],
        (false, false) => vec![10, 1_000, 10_000, 100_000],
        (false, true) => vec![10, 1_000, 100_000, 1_000_000],
    };
    let news: Vec<usize> = if quick {
        vec![0, 10]
    } else {
        vec![0, 10, 1_000]
    };
    let memory_tweets = if quick { 10_000 } else { 1_000_000 };
    let one_tweet_commits = std::env::var("BENCH_COMMITS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1_000 } else { 100_000 });
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });

    // `BENCH_ONLY=ingest,replication,reconnect,handshake,memory,signed,metrics,mirror,startup,owned,browser`
    // runs a subset (replication needs ingest).
    let only = std::env::var("BENCH_ONLY").ok();
    let runs = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    println!("# pipeline bench (quick: {quick}, full: {full})");
    println!(
        "nproc: {}\n{}\n{}",
        shell("nproc", &[]),
        shell("free", &["-g"]),
        shell("df", &["-h", &root.to_string_lossy()])
    );
    println!(
        "{} distinct sample tweets, repeated with fresh ids",
        common::TweetGen::new().distinct()
    );

    actix_rt::System::new().block_on(async {
        if runs("ingest") {
            ingest_and_replicate(root, tweets, runs("replication"), quick).await;
        }
        if runs("reconnect") {
            reconnect::header();
            for &h in &histories {
                let dir = root.join(format!("history-{h}"));
                reconnect::run(&dir, h, &news).await;
                std::fs::remove_dir_all(&dir).ok();
            }
        }
        if runs("reconnect") || runs("handshake") {
            let connections = if quick { 200 } else { 1_000 };
            handshake::run(&root.join("handshake"), connections).await;
        }
        if runs("signed") {
            signed::run(root, tweets, one_tweet_commits, rounds).await;
        }
        if runs("metrics") {
            metrics_cost::run(root, tweets, rounds).await;
        }
        if runs("mirror") {
            let n = std::env::var("BENCH_CDVCS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(if quick { 1_000 } else { 10_000 });
            mirror::run(&root.join("mirror"), n, 10).await;
        }
        // History sizes and starts of the start-up scenarios.
        let (sizes, starts) = if quick {
            (vec![100, 1_000, 10_000], 3)
        } else {
            (vec![1_000, 100_000, 1_000_000], 5)
        };
        if runs("startup") {
            startup::run(root, &sizes, starts).await;
        }
        if runs("owned") {
            startup::owned(root, &sizes, starts).await;
        }
        if runs("browser") {
            let n = std::env::var("BENCH_BROWSER_TWEETS")
                .ok()
                .and_then(|r| r.parse().ok())
                .unwrap_or(if quick { 1_000 } else { 10_000 });
            browser::run(&root.join("browser"), n).await;
        }
    });
    if runs("memory") {
        memory::run(&root.join("memory"), memory_tweets);
    }
}

async fn ingest_and_replicate(root: &std::path::Path, tweets: usize, replicate: bool, quick: bool) {
    {
        ingest::header();
        let ing = ingest::run(&root.join("ingest"), &root.join("raw"), tweets).await;
        // The baseline's file: the uncompressed values keyed by id, as store format 1 kept them.
        let raw = ingest::dir_bytes(&root.join("raw"));
        std::fs::remove_dir_all(root.join("raw")).ok();
        println!(
            "raw redb file: {:.1} MB, {:.3} of the params, {:.3} of their compact JSON",
            raw as f64 / 1e6,
            raw as f64 / ing.payload_bytes as f64,
            raw as f64 / ing.json_bytes as f64
        );
        let store = ingest::dir_bytes(&root.join("ingest"));
        println!(
            "store after ingest (every file under the directory): {:.1} MB, \
             {:.3} of the params, {:.3} of their compact JSON ({:.1} MB)",
            store as f64 / 1e6,
            store as f64 / ing.payload_bytes as f64,
            store as f64 / ing.json_bytes as f64,
            ing.json_bytes as f64 / 1e6
        );
        ingest::store_size(root, if quick { 10 } else { 100 }).await;
        ingest::levels();

        if !replicate {
            return;
        }
        replication::header();
        let rep = replication::run(
            &root.join("ingest"),
            &root.join("replica"),
            ing.tweets,
            ing.payload_bytes,
        )
        .await;
        println!(
            "node start on the {}-tweet store: {}",
            common::thousands(ing.tweets as u64),
            common::secs(rep.holder_start)
        );
        std::fs::remove_dir_all(root.join("ingest")).ok();
        std::fs::remove_dir_all(root.join("replica")).ok();
    }
}
