//! Ingest: tweets/s into the CDVCS through a node (durable commits of 1,000 tweets) against
//! raw redb writing the same bytes (one durable transaction per 1,000 values); the store's
//! size against the params and their compact JSON, on the bench stream and on the shipped
//! sample's distinct tweets (commits of 1,000 and of 10); and the zstd level of packs.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{Durability, TableDefinition};

use crate::common::{Authoring, TweetGen, key, secs, start_node, start_node_as, thousands, txs};

/// Tweets per commit (and per raw transaction).
pub const PER_COMMIT: usize = 1_000;

const RAW: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");

/// What one ingest run measured.
pub struct Ingest {
    pub tweets: usize,
    pub payload_bytes: u64,
    /// The params as compact JSON (what the store size target is against).
    pub json_bytes: u64,
}

/// Bytes of the params `value` as compact JSON.
pub fn json_len(value: &[u8]) -> u64 {
    let decoded = replikativ::tweets::decode_params(value).expect("params decode");
    serde_json::to_vec(&decoded).expect("json").len() as u64
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Ingests `n` tweets into a node stored in `dir` (left there for the replication run).
/// Generating and encoding the tweets is outside both timings.
pub async fn node_ingest(dir: &Path, n: usize) -> (Duration, u64, u64) {
    node_ingest_as(dir, n, Authoring::Signed).await
}

/// [`node_ingest`] by a node authoring its commits as `authoring` says.
pub async fn node_ingest_as(dir: &Path, n: usize, authoring: Authoring) -> (Duration, u64, u64) {
    let node = start_node_as("ingest", dir, authoring).await;
    let stage = node.stage();
    let k = key();
    let mut source = TweetGen::new();
    let mut busy = Duration::ZERO;
    let mut bytes = 0u64;
    let mut json = 0u64;
    let mut done = 0;
    while done < n {
        let values = source.batch(PER_COMMIT.min(n - done));
        done += values.len();
        bytes += values.iter().map(|v| v.len() as u64).sum::<u64>();
        json += values.iter().map(|v| json_len(v)).sum::<u64>();
        let txs = txs(values);
        let t = Instant::now();
        stage.transact(&k, txs).await.expect("transact");
        busy += t.elapsed();
    }
    node.shutdown().await;
    (busy, bytes, json)
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
    let (node, payload_bytes, json_bytes) = node_ingest(node_dir, n).await;
    let raw = raw_ingest(raw_dir, n);
    let r = Ingest {
        tweets: n,
        payload_bytes,
        json_bytes,
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

/// Store size without the bench stream's flattery (it repeats the 517 sample tweets within a
/// commit of 1,000, which zstd finds): `rounds` passes over the distinct sample, each pass
/// one commit of all 517 (no tweet twice in a commit; fresh ids each pass), or commits of 10,
/// through a node; every file under the store directory against the params and their
/// compact JSON.
pub async fn store_size(root: &Path, rounds: usize) {
    let mut source = TweetGen::new();
    let distinct = source.distinct();
    println!(
        "\n### Store size, {rounds} passes over the {distinct} distinct sample tweets \
         (no repeat within a commit)\n"
    );
    println!(
        "| tweets per commit | tweets | params | compact JSON | store dir | / compact JSON \
         | / params | ingest |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for per in [distinct, 10] {
        let dir = root.join(format!("size-{per}"));
        let node = start_node("size", &dir, false, None).await;
        let stage = node.stage();
        let k = key();
        let (mut params, mut json, mut busy) = (0u64, 0u64, Duration::ZERO);
        for _ in 0..rounds {
            let tweets = source.batch(distinct);
            params += tweets.iter().map(|v| v.len() as u64).sum::<u64>();
            json += tweets.iter().map(|v| json_len(v)).sum::<u64>();
            for chunk in tweets.chunks(per) {
                let txs = txs(chunk.to_vec());
                let t = Instant::now();
                stage.transact(&k, txs).await.expect("transact");
                busy += t.elapsed();
            }
        }
        node.shutdown().await;
        let bytes = dir_bytes(&dir);
        let n = (rounds * distinct) as u64;
        println!(
            "| {per} | {} | {:.1} MB | {:.1} MB | {:.1} MB | {:.3} | {:.3} | {} tweets/s |",
            thousands(n),
            params as f64 / 1e6,
            json as f64 / 1e6,
            bytes as f64 / 1e6,
            bytes as f64 / json as f64,
            bytes as f64 / params as f64,
            thousands((n as f64 / busy.as_secs_f64()) as u64),
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// zstd levels on commits of 1,000 from the bench stream and on the distinct sample: the
/// ratio (compressed / params), compression with the C library and decompression with ruzstd
/// (what packs use), single-threaded.
pub fn levels() {
    let mut source = TweetGen::new();
    let distinct = source.batch(source.distinct());
    let stream: Vec<Vec<u8>> = (0..10).map(|_| source.batch(PER_COMMIT).concat()).collect();
    println!("\n### zstd level of packs\n");
    println!("| input | level | ratio | compress | decompress (ruzstd) |");
    println!("|---|---:|---:|---:|---:|");
    let inputs = [
        ("10 commits of 1,000, bench stream", stream),
        ("the distinct sample, one commit", vec![distinct.concat()]),
    ];
    for (what, commits) in &inputs {
        let total: usize = commits.iter().map(Vec::len).sum();
        for level in [1, 2, 3, 5] {
            let t = Instant::now();
            let frames: Vec<Vec<u8>> = commits
                .iter()
                .map(|c| zstd::bulk::compress(c, level).expect("compress"))
                .collect();
            let compress = t.elapsed();
            let t = Instant::now();
            let mut outs = Vec::with_capacity(frames.len());
            for f in &frames {
                let mut out = Vec::new();
                let mut dec = ruzstd::decoding::StreamingDecoder::new(&f[..]).expect("frame");
                std::io::Read::read_to_end(&mut dec, &mut out).expect("decompress");
                outs.push(out);
            }
            let decompress = t.elapsed();
            assert!(outs == *commits, "round trip");
            let packed: usize = frames.iter().map(Vec::len).sum();
            let mbps = |d: Duration| total as f64 / 1e6 / d.as_secs_f64();
            println!(
                "| {what} | {level} | {:.3} | {:.0} MB/s | {:.0} MB/s |",
                packed as f64 / total as f64,
                mbps(compress),
                mbps(decompress)
            );
        }
    }
}
