//! Durable writes per second through the `StoreActor` (group commit), against two raw redb
//! baselines measured in the same run: one transaction per write (what a store without group
//! commit pays) and one transaction for everything (the ceiling: one fsync in total).
//!
//! `cargo bench --bench store`; `BENCH_QUICK=1` for a few-second smoke run.
//! Prints a Markdown table for BENCHMARKS.md.

use std::time::{Duration, Instant};

use actix::Actor;
use redb::{Durability, TableDefinition};
use replikativ::store::{Store, StoreActor, Write, WriteBatch};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");

/// `count` distinct values of `size` bytes (distinct so no write is deduplicated away).
fn values(size: usize, count: usize, salt: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut v = vec![0u8; size];
            let tag = format!("{salt}:{i}:");
            v[..tag.len()].copy_from_slice(tag.as_bytes());
            for (j, b) in v.iter_mut().enumerate().skip(tag.len()) {
                *b = (j as u64 ^ (i as u64).wrapping_mul(2_654_435_761)) as u8;
            }
            v
        })
        .collect()
}

fn raw_db() -> (tempfile::TempDir, redb::Database) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let db = redb::Database::create(dir.path().join("raw.redb")).expect("create");
    (dir, db)
}

fn raw_txn_per_write(vals: &[Vec<u8>]) -> Duration {
    let (_dir, db) = raw_db();
    let start = Instant::now();
    for v in vals {
        let mut txn = db.begin_write().expect("txn");
        txn.set_durability(Durability::Immediate)
            .expect("durability");
        {
            let mut t = txn.open_table(TABLE).expect("table");
            t.insert(&replikativ::Id::of(v).as_bytes()[..], v.as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    start.elapsed()
}

fn raw_one_txn(vals: &[Vec<u8>]) -> Duration {
    let (_dir, db) = raw_db();
    let start = Instant::now();
    let mut txn = db.begin_write().expect("txn");
    txn.set_durability(Durability::Immediate)
        .expect("durability");
    {
        let mut t = txn.open_table(TABLE).expect("table");
        for v in vals {
            t.insert(&replikativ::Id::of(v).as_bytes()[..], v.as_slice())
                .expect("insert");
        }
    }
    txn.commit().expect("commit");
    start.elapsed()
}

/// `writers` concurrent callers, each sending its share of `vals` one value per `Write` and
/// waiting for each to be durable before sending the next.
fn through_actor(vals: Vec<Vec<u8>>, writers: usize) -> (Duration, u64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let before = store.commit_count();
    let elapsed = actix::System::new().block_on({
        let store = store.clone();
        async move {
            let actor = StoreActor::new(store).start();
            let mut shares: Vec<Vec<Vec<u8>>> = vec![Vec::new(); writers];
            for (i, v) in vals.into_iter().enumerate() {
                shares[i % writers].push(v);
            }
            let start = Instant::now();
            let tasks: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    let actor = actor.clone();
                    actix_rt::spawn(async move {
                        for v in share {
                            let mut b = WriteBatch::new();
                            b.put_value(v);
                            actor.send(Write(b)).await.expect("mailbox").expect("write");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("writer");
            }
            start.elapsed()
        }
    });
    (elapsed, store.commit_count() - before)
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let n = if quick { 200 } else { 4000 };
    println!(
        "{n} writes per configuration{}",
        if quick { " (quick)" } else { "" }
    );
    println!();
    println!(
        "| value | writers | actor writes/s | txns | raw txn/write writes/s | raw one txn writes/s | actor ÷ txn/write | actor ÷ one txn |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for size in [1024usize, 4096] {
        let per_write = per_sec(n, raw_txn_per_write(&values(size, n, 1)));
        let one_txn = per_sec(n, raw_one_txn(&values(size, n, 2)));
        for (k, writers) in [1usize, 8, 64].into_iter().enumerate() {
            let (elapsed, txns) = through_actor(values(size, n, 10 + k as u64), writers);
            let actor = per_sec(n, elapsed);
            println!(
                "| {} KiB | {writers} | {actor:.0} | {txns} | {per_write:.0} | {one_txn:.0} | {:.2} | {:.3} |",
                size / 1024,
                actor / per_write,
                actor / one_txn
            );
        }
    }
}
