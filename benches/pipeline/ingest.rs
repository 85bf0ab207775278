//! Ingest: tweets/s into the CDVCS through a node (durable commits of 1,000 tweets) against
//! raw redb writing the same bytes (one durable transaction per 1,000 values).

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Durability, TableDefinition};

use crate::common::{Authoring, TweetGen, key, secs, start_node_as, thousands, txs};

/// Tweets per commit (and per raw transaction).
pub const PER_COMMIT: usize = 1_000;

const RAW: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");

/// What one ingest run measured.
pub struct Ingest {
    pub tweets: usize,
    pub payload_bytes: u64,
}

/// Ingests `n` tweets into a node stored in `dir` (left there for the replication run).
/// Generating and encoding the tweets is outside both timings.
pub async fn node_ingest(dir: &Path, n: usize) -> (Duration, u64) {
    node_ingest_as(dir, n, Authoring::Signed).await
}

/// [`node_ingest`] by a node authoring its commits as `authoring` says.
pub async fn node_ingest_as(dir: &Path, n: usize, authoring: Authoring) -> (Duration, u64) {
    let node = start_node_as("ingest", dir, authoring).await;
    let stage = node.stage();
    let k = key();
    let mut source = TweetGen::new();
    let mut busy = Duration::ZERO;
    let mut bytes = 0u64;
    let mut done = 0;
    while done < n {
        let values = source.batch(PER_COMMIT.min(n - done));
        done += values.len();
        bytes += values.iter().map(|v| v.len() as u64).sum::<u64>();
        let txs = txs(values);
        let t = Instant::now();
        stage.transact(&k, txs).await.expect("transact");
        busy += t.elapsed();
    }
    node.shutdown().await;
    (busy, bytes)
}

/// Writes the same tweets as `node_ingest` into a bare redb file keyed by their BLAKE3.
pub fn raw_ingest(dir: &Path, n: usize) -> Duration {
    std::fs::create_dir_all(dir).expect("dir");
    let db = redb::Database::create(dir.join("raw.redb")).expect("raw redb");
    let mut source = TweetGen::new();
    let mut busy = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let values = source.batch(PER_COMMIT.min(n - done));
        done += values.len();
        let t = Instant::now();
        let mut txn = db.begin_write().expect("begin");
        txn.set_durability(Durability::Immediate)
            .expect("durability");
        {
            let mut table = txn.open_table(RAW).expect("table");
            for v in &values {
                let id = blake3::hash(v);
                table.insert(&id.as_bytes()[..], &v[..]).expect("insert");
            }
        }
        txn.commit().expect("commit");
        busy += t.elapsed();
    }
    busy
}

/// Runs both and prints the table row.
pub async fn run(node_dir: &Path, raw_dir: &Path, n: usize) -> Ingest {
    let (node, payload_bytes) = node_ingest(node_dir, n).await;
    let raw = raw_ingest(raw_dir, n);
    let r = Ingest {
        tweets: n,
        payload_bytes,
    };
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "| {} | {:.1} MB | {} | {} tweets/s | {} | {} tweets/s | {:.2} |",
        thousands(n as u64),
        payload_bytes as f64 / 1e6,
        secs(node),
        thousands(rate(node) as u64),
        secs(raw),
        thousands(rate(raw) as u64),
        raw.as_secs_f64() / node.as_secs_f64(),
    );
    r
}

/// The table header.
pub fn header() {
    println!("\n### Ingest (durable commits of {PER_COMMIT} tweets)\n");
    println!(
        "| tweets | params bytes | node | node rate | raw redb | raw rate | node/raw throughput |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
}
