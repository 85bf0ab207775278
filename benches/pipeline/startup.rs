//! Start-up (`BENCH_ONLY=startup`): how long a node takes to start on a store of 10^3, 10^5
//! and 10^6 one-tweet commits (quick: 10^2, 10^3, 10^4), the same command at every point.
//!
//! Each store is built straight through the store API ([`build_history`]: 10^4 commits per
//! write transaction, small params `{"id","text"}`), not through a node: a node commits each
//! transact durably on its own, which at 10^6 commits would take most of an hour; the store
//! holds the same records a replica persists (commit values, graph entries, heads, meta).
//!
//! Measured per store, `runs` times each, median (min–max):
//! - its parts, one after the other in this process: `Store::open` of the file, then
//!   `store::graph::open` of the CDVCS (its heads, what a node does since graph entries keep
//!   their generation) and, as the baseline, `store::cdvcs::load` (every graph entry into
//!   memory, what a node did before);
//! - `Node` start in this process: open the store, open the CDVCS, bind a listener, until
//!   `start()` returns with the replica serving; then shut down (not timed).
//! - `replikativ peer --store DIR --listen 127.0.0.1:0` as a child process: from spawn until
//!   it says `serving peers at`, and its peak RSS until then (`VmHWM`); then SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{build_history, pow10, replica, secs, start_node};

/// One store size's figures.
struct Point {
    commits: usize,
    build: Duration,
    file_mb: f64,
    open: Vec<Duration>,
    load: Vec<Duration>,
    heads_only: Vec<Duration>,
    node: Vec<Duration>,
    cli: Vec<Duration>,
    cli_rss_kb: Vec<u64>,
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn spread(v: &[Duration]) -> String {
    let (lo, hi) = (v.iter().min(), v.iter().max());
    match (lo, hi) {
        (Some(lo), Some(hi)) => format!("{}–{}", ms(*lo), ms(*hi)),
        _ => "-".into(),
    }
}

/// Runs the scenario over `sizes` commits, `runs` starts each, in `root`.
pub async fn run(root: &Path, sizes: &[usize], runs: usize) {
    println!("\n### Node start against history\n");
    let mut points = Vec::new();
    for &n in sizes {
        let dir = root.join(format!("startup-{n}"));
        let t = Instant::now();
        let heads = build_history(&dir, n);
        let build = t.elapsed();
        let file = std::fs::metadata(dir.join(replikativ::store::FILE_NAME))
            .map(|m| m.len())
            .unwrap_or(0);
        let mut point = Point {
            commits: n,
            build,
            file_mb: file as f64 / 1e6,
            open: Vec::new(),
            load: Vec::new(),
            heads_only: Vec::new(),
            node: Vec::new(),
            cli: Vec::new(),
            cli_rss_kb: Vec::new(),
        };
        for _ in 0..runs {
            let t = Instant::now();
            let store = replikativ::store::Store::open(&dir).expect("open the store");
            point.open.push(t.elapsed());
            let t = Instant::now();
            let opened = replikativ::store::graph::open(&store, &crate::common::key())
                .expect("open")
                .expect("the CDVCS is stored");
            point.heads_only.push(t.elapsed());
            assert_eq!(
                opened.heads().iter().copied().collect::<Vec<_>>(),
                heads,
                "the heads open"
            );
            drop(opened);
            let t = Instant::now();
            let cdvcs = replikativ::store::cdvcs::load(&store, &crate::common::key())
                .expect("load")
                .expect("the CDVCS is stored");
            point.load.push(t.elapsed());
            assert_eq!(cdvcs.len(), n + 1, "the whole history loads");
            drop((cdvcs, store));
        }
        for _ in 0..runs {
            let t = Instant::now();
            let node = start_node("startup", &dir, true, None).await;
            point.node.push(t.elapsed());
            assert_eq!(replica(&node).heads(), heads, "the node serves the history");
            node.shutdown().await;
            drop(node);
        }
        wait_released(&dir).await;
        for _ in 0..runs {
            let (took, rss) = peer_cli(&dir);
            point.cli.push(took);
            point.cli_rss_kb.push(rss);
        }
        eprintln!(
            "startup {}: node {} cli {}",
            pow10(n),
            ms(median(&point.node)),
            ms(median(&point.cli))
        );
        points.push(point);
        std::fs::remove_dir_all(&dir).ok();
    }
    println!(
        "| commits | store file | build (store API) | `Store::open` | CDVCS open (heads) | \
         CDVCS load (whole graph, before) | \
         node start, median ({runs} runs) | min–max | \
         `replikativ peer` until serving, median | min–max | peer peak RSS until serving |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &points {
        let rss = p.cli_rss_kb.iter().max().copied().unwrap_or(0);
        println!(
            "| {} | {:.1} MB | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} MiB |",
            pow10(p.commits),
            p.file_mb,
            secs(p.build),
            ms(median(&p.open)),
            ms(median(&p.heads_only)),
            ms(median(&p.load)),
            ms(median(&p.node)),
            spread(&p.node),
            ms(median(&p.cli)),
            spread(&p.cli),
            rss as f64 / 1024.0
        );
    }
}

/// Waits (untimed) until no node of this process holds the store in `dir` any more: a node
/// that was shut down releases its store a moment later, once this runtime has run on.
async fn wait_released(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match replikativ::store::Store::open(dir) {
            Ok(_) => return,
            Err(replikativ::store::StoreError::InUse { .. }) if Instant::now() < deadline => {
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("the store is not released: {e}"),
        }
    }
}

/// Starts `replikativ peer` on the store in `dir`: the time until it says it serves, and its
/// peak RSS in KiB until then; then stops it with SIGTERM.
fn peer_cli(dir: &Path) -> (Duration, u64) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_replikativ"))
        .args(["peer", "--store"])
        .arg(dir)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn replikativ peer");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut said = Vec::new();
    let mut took = None;
    for line in lines.by_ref() {
        let line = line.expect("read the peer's stderr");
        if line.contains("serving peers at") {
            took = Some(t.elapsed());
            break;
        }
        said.push(line);
    }
    let Some(took) = took else {
        panic!("replikativ peer did not start: {}", said.join("\n"));
    };
    // Peak RSS so far (start-up is what is measured), before it is asked to stop.
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    // SAFETY: signalling our own child, not yet waited for (so its pid is still its own).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    // Read to the end (its last words), so it never writes into a closed pipe.
    lines.for_each(drop);
    let status = child.wait().expect("wait for replikativ peer");
    assert!(status.success(), "replikativ peer stopped with {status}");
    (took, rss)
}

/// One store size's figures for an owned CDVCS.
struct OwnedPoint {
    commits: usize,
    rule: Vec<Duration>,
    first: Vec<Duration>,
    whole: Duration,
}

/// Owned CDVCS (`BENCH_ONLY=owned`): a history of `sizes` commits by the owner, the first of
/// which grants a second key write access, stored with every commit's writer record as a node
/// stores them. Measured per store, `runs` times, median (min–max):
/// - the writer rule ready: `Store::open`, `store::graph::open` and `store::writers::open`,
///   then the granted key's verdict at the heads (what `collect` checks before it starts);
/// - a node of the granted key started on the store and its first commit made durable
///   (which the writer rule judges);
/// - and once, as the baseline, the rule before its records were stored: the whole history
///   judged on first use (`store::writers::judge_history`, every signature checked).
pub async fn owned(root: &Path, sizes: &[usize], runs: usize) {
    use replikativ::crdt::authorship::Verdict;
    use replikativ::identity::Keypair;
    println!("\n### An owned CDVCS: the writer rule on start, against history\n");
    let owner = Keypair::from_seed([11; 32]);
    let writer = Keypair::from_seed([12; 32]);
    let k = replikativ::crdt::CrdtKey::new(owner.public().to_string(), uuid::Uuid::from_u128(0x0e));
    let mut points = Vec::new();
    for &n in sizes {
        let dir = root.join(format!("owned-{n}"));
        crate::common::build_history_in(&dir, &k, n, Some(&owner), Some(&writer.public()), |i| {
            replikativ::tweets::encode_params(
                &serde_json::json!({"id": i.to_string(), "text": format!("tweet {i}")}),
            )
        });
        let mut point = OwnedPoint {
            commits: n,
            rule: Vec::new(),
            first: Vec::new(),
            whole: Duration::ZERO,
        };
        for _ in 0..runs {
            let t = Instant::now();
            let store = replikativ::store::Store::open(&dir).expect("open the store");
            let cdvcs = replikativ::store::graph::open(&store, &k)
                .expect("open")
                .expect("stored");
            let mut rule = replikativ::store::writers::open(&store, &k, &cdvcs).expect("rule");
            let heads: Vec<replikativ::Id> = cdvcs.heads().iter().copied().collect();
            let verdict = rule.verdict(&heads, &writer.public()).expect("records");
            point.rule.push(t.elapsed());
            assert_eq!(verdict, Ok(Verdict::Writer), "the granted key may write");
        }
        {
            let store = replikativ::store::Store::open(&dir).expect("open the store");
            let cdvcs = replikativ::store::graph::open(&store, &k)
                .expect("open")
                .expect("stored");
            let t = Instant::now();
            let mut rule =
                replikativ::store::writers::judge_history(&store, &k, &cdvcs).expect("judged");
            point.whole = t.elapsed();
            let heads: Vec<replikativ::Id> = cdvcs.heads().iter().copied().collect();
            assert_eq!(
                rule.verdict(&heads, &writer.public()).expect("in memory"),
                Ok(Verdict::Writer)
            );
        }
        for i in 0..runs {
            let t = Instant::now();
            let node = replikativ::node::Node::builder()
                .name("owned")
                .store_dir(&dir)
                .cdvcs(k.clone())
                .key(writer.clone())
                .start()
                .await
                .expect("the granted writer's node starts");
            node.stage()
                .transact(
                    &k,
                    vec![(
                        replikativ::tweets::ADD_TWEET.to_owned(),
                        replikativ::tweets::encode_params(
                            &serde_json::json!({"id": format!("w{i}"), "text": "by the writer"}),
                        ),
                    )],
                )
                .await
                .expect("the granted writer commits");
            point.first.push(t.elapsed());
            node.shutdown().await;
            drop(node);
            wait_released(&dir).await;
        }
        eprintln!(
            "owned {}: rule {} first commit {} whole history {}",
            pow10(n),
            ms(median(&point.rule)),
            ms(median(&point.first)),
            ms(point.whole)
        );
        points.push(point);
        std::fs::remove_dir_all(&dir).ok();
    }
    println!(
        "| commits | writer rule ready (records), median ({runs} runs) | min–max | \
         node start + the granted key's first commit, median | min–max | \
         before: whole history judged on first use | ratio (before / records) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for p in &points {
        let rule = median(&p.rule);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0}x |",
            pow10(p.commits),
            ms(rule),
            spread(&p.rule),
            ms(median(&p.first)),
            spread(&p.first),
            ms(p.whole),
            p.whole.as_secs_f64() / rule.as_secs_f64().max(1e-9)
        );
    }
}
