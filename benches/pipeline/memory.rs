//! Memory: peak RSS (`VmHWM`) of a process that ingests `n` tweets into one node while a
//! second node in the same process replicates them live (both durable), against a process
//! that only writes the same tweets into raw redb. Each runs in its own child process (this
//! bench binary re-executed with `--rss <mode> <n> <dir>`), so the peaks do not mix.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{TweetGen, key, replica, start_node, thousands, txs, url_of, wait_heads};
use crate::ingest::{PER_COMMIT, raw_ingest};

/// A field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The child's work; prints `rss <start KiB> <peak KiB>`.
pub fn child(mode: &str, n: usize, dir: &Path) {
    match mode {
        "raw" => {
            let start = status_kib("VmRSS:");
            raw_ingest(&dir.join("raw"), n);
            println!("rss {start} {}", status_kib("VmHWM:"));
        }
        _ => actix_rt::System::new().block_on(async {
            let a = start_node("a", &dir.join("a"), true, None).await;
            let b = start_node("b", &dir.join("b"), false, Some(&url_of(&a))).await;
            let start = status_kib("VmRSS:");
            let stage = a.stage();
            let mut source = TweetGen::new();
            let mut done = 0;
            while done < n {
                let values = source.batch(PER_COMMIT.min(n - done));
                done += values.len();
                stage.transact(&key(), txs(values)).await.expect("transact");
            }
            let heads = replica(&a).heads();
            wait_heads(&b, &heads, Duration::from_secs(3600)).await;
            println!("rss {start} {}", status_kib("VmHWM:"));
            b.shutdown().await;
            a.shutdown().await;
        }),
    }
}

/// Runs a child and answers `(RSS after start, peak RSS)` in KiB.
fn spawn(mode: &str, n: usize, dir: &Path) -> (u64, u64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["--rss", mode, &n.to_string()])
        .arg(dir)
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("rss "))
        .expect("child reports rss");
    let mut parts = line
        .split_whitespace()
        .skip(1)
        .map(|p| p.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Runs both children and prints the table.
pub fn run(root: &Path, n: usize) {
    let (node_start, node_peak) = spawn("node", n, &root.join("node"));
    let (raw_start, raw_peak) = spawn("raw", n, &root.join("raw"));
    let mib = |k: u64| k as f64 / 1024.0;
    println!("\n### Peak RSS\n");
    println!("| tweets | process | RSS after start | peak RSS (VmHWM) | peak / raw peak |");
    println!("|---:|---|---:|---:|---:|");
    println!(
        "| {} | two nodes: ingest on one, live replication to the other | {:.0} MiB | {:.0} MiB | {:.2} |",
        thousands(n as u64),
        mib(node_start),
        mib(node_peak),
        node_peak as f64 / raw_peak.max(1) as f64
    );
    println!(
        "| {} | raw redb, same bytes | {:.0} MiB | {:.0} MiB | 1.00 |",
        thousands(n as u64),
        mib(raw_start),
        mib(raw_peak)
    );
}
