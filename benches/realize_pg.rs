//! Realization into PostgreSQL: tweets per second applied through the tweet Postgres sink
//! (`open_pg_sink`: params decoded, words computed, tweets already stored dropped, binary
//! `COPY`, per-account counters, the checkpoint row, one transaction per commit of 1,000
//! transactions) against a raw binary `COPY` of the same rows (decoded and with their words
//! before timing) into the same tables and indexes, one transaction per 1,000 rows, in the
//! same run on the same throwaway server (`fsync = on`). Also: the sink writing row by row
//! (`PgLoad::Insert`), and the SQLite sink on the same commits.
//!
//! `cargo bench --bench realize_pg`; `BENCH_QUICK=1` for a few seconds (CI), `BENCH_N=…` to
//! choose the size. Needs the PostgreSQL server binaries (`/usr/lib/postgresql/*/bin`):
//! without them it says so and measures nothing (under `CI` that is a failure).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::postgres::{PASSWORD, PgCluster};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use replikativ::Id;
use replikativ::realize::postgres::PgTarget;
use replikativ::realize::{Sink, TxParams};
use replikativ::tweets::words::distinct_words;
use replikativ::tweets::{
    ADD_TWEET, PgLoad, TweetColumns, encode_params, open_pg_sink_with, open_sink, synthetic_tweets,
};

/// Transactions per commit (the collector's default batch) and rows per raw transaction.
const BATCH: usize = 1_000;

/// One row as the sink writes it, made before timing.
struct Row {
    id: String,
    text: String,
    created_at: Option<String>,
    author_id: Option<String>,
    username: Option<String>,
    retweets: Option<i64>,
    likes: Option<i64>,
    lang: Option<String>,
    raw: String,
    words: Vec<String>,
}

fn row_of(params: &[u8]) -> Row {
    let c = TweetColumns::of_params(params).expect("columns");
    Row {
        id: c.id.to_string(),
        text: c.text.to_string(),
        created_at: c.created_at.map(|s| s.into_owned()),
        author_id: c.author_id.map(|s| s.into_owned()),
        username: c.username.map(str::to_string),
        retweets: c.retweets,
        likes: c.likes,
        lang: c.lang.map(str::to_string),
        words: distinct_words(c.text),
        raw: c.raw,
    }
}

fn target(pg: &PgCluster, db: &str) -> PgTarget {
    PgTarget::parse_with(&pg.url("postgres", db), &|k| {
        (k == "PGPASSWORD").then(|| PASSWORD.to_string())
    })
    .expect("target")
}

fn commits(txs: &[TxParams]) -> Vec<(Id, &[TxParams])> {
    txs.chunks(BATCH)
        .enumerate()
        .map(|(i, c)| (Id::of(format!("bench-{i}").as_bytes()), c))
        .collect()
}

fn sink_run(sink: &mut dyn Sink, txs: &[TxParams]) -> Duration {
    let start = Instant::now();
    for (id, txs) in commits(txs) {
        sink.apply_commit_by(id, "unsigned", txs).expect("apply");
    }
    start.elapsed()
}

fn pg_sink_run(pg: &PgCluster, db: &str, load: PgLoad, txs: &[TxParams]) -> Duration {
    pg.createdb(db);
    let mut sink = open_pg_sink_with(&target(pg, db), load).expect("sink");
    sink_run(&mut sink, txs)
}

/// The same rows by plain binary `COPY` into the sink's own (empty) tables.
fn raw_copy_run(pg: &PgCluster, db: &str, rows: &[Row]) -> Duration {
    pg.createdb(db);
    let t = target(pg, db);
    drop(open_pg_sink_with(&t, PgLoad::Copy).expect("schema"));
    let mut client = t.connect().expect("connect");
    let types = [
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT_ARRAY,
    ];
    let start = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut tx = client.transaction().expect("begin");
        let copy = tx
            .copy_in(
                "COPY replikativ.tweets (id, text, created_at, author_id, username,
                 retweet_count, like_count, lang, raw, words) FROM STDIN (FORMAT binary)",
            )
            .expect("copy");
        let mut writer = BinaryCopyInWriter::new(copy, &types);
        for r in chunk {
            let values: [&(dyn ToSql + Sync); 10] = [
                &r.id,
                &r.text,
                &r.created_at,
                &r.author_id,
                &r.username,
                &r.retweets,
                &r.likes,
                &r.lang,
                &r.raw,
                &r.words,
            ];
            writer.write(&values).expect("row");
        }
        writer.finish().expect("finish");
        tx.commit().expect("commit");
    }
    start.elapsed()
}

fn count(pg: &PgCluster, db: &str) -> usize {
    pg.psql(db, "SELECT count(*) FROM replikativ.tweets")
        .parse()
        .expect("count")
}

fn main() {
    let Some(pg) = PgCluster::start_with("bench realize_pg", "fsync = on") else {
        return;
    };
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let (mut n, rounds) = if quick { (5_000, 1) } else { (100_000, 3) };
    if let Some(forced) = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()) {
        n = forced;
    }
    // Encoded once, as the collector does; no side's timing includes this.
    let txs: Vec<TxParams> = synthetic_tweets(n)
        .map(|r| (ADD_TWEET.to_string(), encode_params(&r.params)))
        .collect();
    let rows: Vec<Row> = txs.iter().map(|(_, p)| row_of(p)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut best = [Duration::MAX; 4];
    let names = ["pg_sink_copy", "pg_sink_insert", "raw_copy", "sqlite_sink"];
    for round in 0..rounds {
        let mut took = [Duration::ZERO; 4];
        // Rotate the order so no side always runs on a warmer server.
        for k in 0..4 {
            let side = (k + round) % 4;
            let db = format!("r{round}_{}", names[side]);
            took[side] = match side {
                0 => pg_sink_run(&pg, &db, PgLoad::Copy, &txs),
                1 => pg_sink_run(&pg, &db, PgLoad::Insert, &txs),
                2 => raw_copy_run(&pg, &db, &rows),
                _ => sink_run(
                    &mut open_sink(dir.path().join(format!("{db}.sqlite"))).expect("sqlite"),
                    &txs,
                ),
            };
            if side < 3 {
                assert_eq!(count(&pg, &db), n, "{db} holds every tweet");
                pg.psql("postgres", &format!("DROP DATABASE {db}"));
            }
        }
        println!(
            "round {round}: {}",
            names
                .iter()
                .zip(took)
                .map(|(s, d)| format!("{s} {:.3} s", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (b, t) in best.iter_mut().zip(took) {
            *b = (*b).min(t);
        }
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    for (name, d) in names.iter().zip(best) {
        println!(
            "realize_pg/{name:<15} {n} tweets, batches of {BATCH}: {:>10.0} tweets/s",
            rate(d)
        );
    }
    println!(
        "realize_pg/ratio  pg sink (COPY) / raw COPY  = {:.2} (best of {rounds})",
        rate(best[0]) / rate(best[2])
    );
    println!(
        "realize_pg/ratio  pg sink (INSERT) / raw COPY = {:.2}",
        rate(best[1]) / rate(best[2])
    );
    println!(
        "realize_pg/ratio  pg sink (COPY) / SQLite sink = {:.2}",
        rate(best[0]) / rate(best[3])
    );
}
