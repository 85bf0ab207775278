//! The cost of metrics (issue 18): ingest and replication of the same tweets by nodes that keep
//! the measurements behind `/metrics` (the shipped default: each group commit's duration,
//! bytes per connection, each peer's lag) and by nodes that do not (`NodeBuilder::metrics
//! (false)`), in the same run, rounds alternating which goes first. Nobody scrapes: what is
//! measured is what the node pays while it works.

use std::path::Path;
use std::time::{Duration, Instant};

use replikativ::node::Node;

use crate::common::{TweetGen, key, replica, secs, txs, url_of, wait_heads};

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

/// Ingest time (durable commits of 1,000) and replication time to an empty node.
async fn round(dir: &Path, tweets: usize, metrics: bool) -> (Duration, Duration) {
    let holder_dir = dir.join("holder");
    let node = start("ingest", &holder_dir, metrics, false, None).await;
    let stage = node.stage();
    let mut source = TweetGen::new();
    let (mut busy, mut done) = (Duration::ZERO, 0);
    while done < tweets {
        let values = source.batch(PER_COMMIT.min(tweets - done));
        done += values.len();
        let txs = txs(values);
        let t = Instant::now();
        stage.transact(&key(), txs).await.expect("transact");
        busy += t.elapsed();
    }
    node.shutdown().await;
    // The stage and the node hold the store open.
    drop(stage);
    drop(node);
    let holder = start("holder", &holder_dir, metrics, true, None).await;
    let heads = replica(&holder).heads();
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
    empty.shutdown().await;
    holder.shutdown().await;
    (busy, sync)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `rounds` rounds of both and prints the table.
pub async fn run(root: &Path, tweets: usize, rounds: usize) {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let order = if r % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for metrics in order {
            let dir = root.join(format!("metrics-{r}-{metrics}"));
            let took = round(&dir, tweets, metrics).await;
            std::fs::remove_dir_all(&dir).ok();
            if metrics {
                on.push(took)
            } else {
                off.push(took)
            }
        }
    }
    let ingest = |v: &[(Duration, Duration)]| median(v.iter().map(|t| t.0).collect());
    let sync = |v: &[(Duration, Duration)]| median(v.iter().map(|t| t.1).collect());
    println!(
        "\n## Cost of metrics: {tweets} tweets, commits of {PER_COMMIT}, median of {rounds} rounds\n"
    );
    println!("| | metrics on (shipped) | metrics off | on / off |");
    println!("|---|---|---|---|");
    for (what, a, b) in [
        ("durable ingest", ingest(&on), ingest(&off)),
        (
            "replication to an empty durable peer",
            sync(&on),
            sync(&off),
        ),
    ] {
        println!(
            "| {what} | {} | {} | {:.3} |",
            secs(a),
            secs(b),
            a.as_secs_f64() / b.as_secs_f64().max(1e-9)
        );
    }
}
