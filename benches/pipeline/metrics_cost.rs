//! The cost of metrics (issue 18): ingest and replication of the same tweets by nodes that keep
//! the measurements behind `/metrics` (the shipped default: each group commit's duration,
//! bytes per connection, each peer's lag) and by nodes that do not (`NodeBuilder::metrics
//! (false)`), in the same run, rounds alternating which goes first. Nobody scrapes: what is
//! measured is what the node pays while it works.

use std::path::Path;
use std::time::{Duration, Instant};

use replikativ::node::Node;

use crate::common::{TweetGen, cpu_time, key, replica, secs, txs, url_of, wait_heads};

const PER_COMMIT: usize = 1_000;

/// Starts a node; the store of a node just shut down is released a moment later (its writer
/// thread is not joined), so "in use" is retried for a few seconds.
async fn start(name: &str, dir: &Path, metrics: bool, listen: bool, connect: Option<&str>) -> Node {
    let t = Instant::now();
    loop {
        let mut b = Node::builder()
            .name(name)
            .store_dir(dir)
            .cdvcs(key())
            .metrics(metrics);
        if listen {
            b = b.listen("127.0.0.1:0");
        }
        if let Some(url) = connect {
            b = b.connect(url);
        }
        match b.start().await {
            Ok(node) => return node,
            Err(replikativ::node::NodeError::Store(e))
                if matches!(*e, replikativ::store::StoreError::InUse { .. })
                    && t.elapsed() < Duration::from_secs(5) =>
            {
                actix_rt::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("node {name} does not start: {e:?}"),
        }
    }
}

/// What one round of one setting took: wall and CPU time (this process, all threads) of the
/// ingest and of the replication.
#[derive(Clone, Copy)]
struct Took {
    ingest: Duration,
    ingest_cpu: Duration,
    sync: Duration,
    sync_cpu: Duration,
}

/// Ingest (durable commits of 1,000) and replication to an empty node.
async fn round(dir: &Path, tweets: usize, metrics: bool) -> Took {
    let holder_dir = dir.join("holder");
    let node = start("ingest", &holder_dir, metrics, false, None).await;
    let stage = node.stage();
    let mut source = TweetGen::new();
    let (mut busy, mut done) = (Duration::ZERO, 0);
    let cpu = cpu_time();
    while done < tweets {
        let values = source.batch(PER_COMMIT.min(tweets - done));
        done += values.len();
        let txs = txs(values);
        let t = Instant::now();
        stage.transact(&key(), txs).await.expect("transact");
        busy += t.elapsed();
    }
    let ingest_cpu = cpu_time() - cpu;
    node.shutdown().await;
    // The stage and the node hold the store open.
    drop(stage);
    drop(node);
    let holder = start("holder", &holder_dir, metrics, true, None).await;
    let heads = replica(&holder).heads();
    let cpu = cpu_time();
    let t = Instant::now();
    let empty = start(
        "empty",
        &dir.join("empty"),
        metrics,
        false,
        Some(&url_of(&holder)),
    )
    .await;
    wait_heads(&empty, &heads, Duration::from_secs(600)).await;
    let sync = t.elapsed();
    let sync_cpu = cpu_time() - cpu;
    empty.shutdown().await;
    holder.shutdown().await;
    Took {
        ingest: busy,
        ingest_cpu,
        sync,
        sync_cpu,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `rounds` rounds of both and prints the table: medians of each setting, and the median
/// of the rounds' own on/off ratios (each round runs both settings back to back, so a ratio
/// within a round shares that moment's load).
pub async fn run(root: &Path, tweets: usize, rounds: usize) {
    let mut pairs: Vec<(Took, Took)> = Vec::new();
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        let mut on_off = [None, None];
        for metrics in order {
            let dir = root.join(format!("metrics-{r}-{metrics}"));
            let took = round(&dir, tweets, metrics).await;
            std::fs::remove_dir_all(&dir).ok();
            on_off[usize::from(!metrics)] = Some(took);
        }
        if let [Some(on), Some(off)] = on_off {
            pairs.push((on, off));
        }
    }
    println!("\n## Cost of metrics: {tweets} tweets, commits of {PER_COMMIT}, {rounds} rounds\n");
    println!(
        "| | metrics on (shipped), median | metrics off, median | on / off of the medians | median of the rounds' on / off | rounds' on / off, min–max |"
    );
    println!("|---|---|---|---|---|---|");
    type Pick = fn(&Took) -> Duration;
    let rows: [(&str, Pick); 4] = [
        ("durable ingest, wall", |t| t.ingest),
        ("durable ingest, CPU", |t| t.ingest_cpu),
        ("replication to an empty durable peer, wall", |t| t.sync),
        ("replication to an empty durable peer, CPU", |t| t.sync_cpu),
    ];
    for (what, pick) in rows {
        let on = median(pairs.iter().map(|p| pick(&p.0)).collect());
        let off = median(pairs.iter().map(|p| pick(&p.1)).collect());
        let ratios: Vec<f64> = pairs
            .iter()
            .map(|p| pick(&p.0).as_secs_f64() / pick(&p.1).as_secs_f64().max(1e-9))
            .collect();
        let (lo, hi) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
        println!(
            "| {what} | {} | {} | {:.3} | {:.3} | {lo:.3}–{hi:.3} |",
            secs(on),
            secs(off),
            on.as_secs_f64() / off.as_secs_f64().max(1e-9),
            median_f(ratios),
        );
    }
}
