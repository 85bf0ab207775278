//! Signed history (issue 15): the same work with signed commits (the product: the author is
//! the node's key, one Ed25519 signature per commit, checked by every replica before it
//! stores the commit) and with unsigned ones (the baseline: commits as before signing
//! existed, an author name and no signature, which replicas still accept in an open CDVCS such
//! as the bench's), measured in the same run, rounds alternating which goes first:
//! 1. ingest of `n` tweets in durable commits of 1,000 through a node;
//! 2. replication of that store to an empty durable peer over loopback `ws://`;
//! 3. catch-up: replication of `m` one-tweet commits (a history written straight into a store,
//!    signed by one key or unsigned; not timed) to an empty durable peer — one signature
//!    check per tweet, the worst case for signatures.
//!
//! The receiving nodes are the product's in both cases; only what they receive differs.

use std::path::Path;
use std::time::{Duration, Instant};

use replikativ::identity::Keypair;

use crate::common::{
    Authoring, TweetGen, build_history_of, cpu_time, secs, start_node, thousands, url_of,
    wait_heads,
};
use crate::ingest::{PER_COMMIT, node_ingest_as};
use crate::replication::node_replication;

/// The times of one round, per authoring: wall time, and the CPU time the process (both
/// nodes, every thread) used meanwhile.
#[derive(Default)]
struct Round {
    ingest: [Duration; 2],
    replication: [Duration; 2],
    catch_up: [Duration; 2],
    ingest_cpu: [Duration; 2],
    replication_cpu: [Duration; 2],
    catch_up_cpu: [Duration; 2],
}

fn slot(a: Authoring) -> usize {
    match a {
        Authoring::Signed => 0,
        Authoring::Unsigned => 1,
    }
}

/// Replicates the store in `holder_dir` to a fresh durable node in `empty_dir` (ws://):
/// from starting the empty node until its heads equal the holder's.
async fn catch_up(holder_dir: &Path, empty_dir: &Path) -> Duration {
    let holder = start_node("holder", holder_dir, true, None).await;
    let heads = crate::common::replica(&holder).heads();
    let url = url_of(&holder);
    let t = Instant::now();
    let empty = start_node("empty", empty_dir, false, Some(&url)).await;
    wait_heads(&empty, &heads, Duration::from_secs(1200)).await;
    let took = t.elapsed();
    empty.shutdown().await;
    holder.shutdown().await;
    took
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Runs `rounds` rounds of `tweets` tweets (ingest, replication) and `commits` one-tweet
/// commits (catch-up), and prints a row per round and the medians.
pub async fn run(root: &Path, tweets: usize, commits: usize, rounds: usize) {
    // The one-tweet histories, written once (not timed) and replicated in every round.
    let signer = Keypair::from_seed([0x15; 32]);
    let histories = [root.join("history-signed"), root.join("history-unsigned")];
    for a in [Authoring::Signed, Authoring::Unsigned] {
        let mut source = TweetGen::new();
        let key = (a == Authoring::Signed).then_some(&signer);
        build_history_of(&histories[slot(a)], commits, key, |_| {
            source.batch(1).pop().expect("one tweet")
        });
    }
    println!(
        "\n### Signed history: signed vs unsigned commits, same run ({} rounds, order alternating)\n",
        rounds
    );
    println!(
        "| round | first | ingest {} tweets, signed | unsigned | replication, signed | unsigned | catch-up {} one-tweet commits, signed | unsigned |",
        thousands(tweets as u64),
        thousands(commits as u64)
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    let mut all = Vec::new();
    for r in 0..rounds {
        let mut round = Round::default();
        for a in Authoring::order(r) {
            let i = slot(a);
            let dir = root.join(format!("signed-ingest-{}", a.name()));
            let empty = root.join(format!("signed-replica-{}", a.name()));
            let cpu = cpu_time();
            round.ingest[i] = node_ingest_as(&dir, tweets, a).await.0;
            round.ingest_cpu[i] = cpu_time() - cpu;
            let cpu = cpu_time();
            round.replication[i] = node_replication(&dir, &empty, None).await.sync;
            round.replication_cpu[i] = cpu_time() - cpu;
            std::fs::remove_dir_all(&dir).ok();
            std::fs::remove_dir_all(&empty).ok();
            let empty = root.join(format!("signed-catch-up-{}", a.name()));
            let cpu = cpu_time();
            round.catch_up[i] = catch_up(&histories[i], &empty).await;
            round.catch_up_cpu[i] = cpu_time() - cpu;
            std::fs::remove_dir_all(&empty).ok();
        }
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r + 1,
            Authoring::order(r)[0].name(),
            secs(round.ingest[0]),
            secs(round.ingest[1]),
            secs(round.replication[0]),
            secs(round.replication[1]),
            secs(round.catch_up[0]),
            secs(round.catch_up[1]),
        );
        all.push(round);
    }
    let med = |f: &dyn Fn(&Round) -> Duration| median(all.iter().map(f).collect());
    type Pick = fn(&Round) -> [Duration; 2];
    let rows: [(&str, Pick, Pick); 3] = [
        (
            "ingest, commits of 1,000 tweets",
            |r| r.ingest,
            |r| r.ingest_cpu,
        ),
        (
            "replication to an empty durable peer",
            |r| r.replication,
            |r| r.replication_cpu,
        ),
        (
            "catch-up, one-tweet commits",
            |r| r.catch_up,
            |r| r.catch_up_cpu,
        ),
    ];
    println!(
        "\n| figure (median of {rounds}) | signed | unsigned | signed/unsigned time | per-round ratios | CPU signed | CPU unsigned | CPU ratio |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|");
    for (name, wall, cpu) in rows {
        let ratios: Vec<String> = all
            .iter()
            .map(|r| {
                let [s, u] = wall(r);
                format!("{:.3}", s.as_secs_f64() / u.as_secs_f64())
            })
            .collect();
        let [signed, unsigned] = [0, 1].map(|i| med(&|r| wall(r)[i]));
        let [cpu_signed, cpu_unsigned] = [0, 1].map(|i| med(&|r| cpu(r)[i]));
        println!(
            "| {name} | {} | {} | {:.3} | {} | {} | {} | {:.3} |",
            secs(signed),
            secs(unsigned),
            signed.as_secs_f64() / unsigned.as_secs_f64(),
            ratios.join(", "),
            secs(cpu_signed),
            secs(cpu_unsigned),
            cpu_signed.as_secs_f64() / cpu_unsigned.as_secs_f64(),
        );
    }
    println!(
        "(ingest: {} tweets in commits of {PER_COMMIT}; catch-up: {} commits of one tweet each)",
        thousands(tweets as u64),
        thousands(commits as u64)
    );
    for h in &histories {
        std::fs::remove_dir_all(h).ok();
    }
}
