//! Realization throughput: tweets per second applied through the tweet SQLite sink
//! (`open_sink`: `add-tweet` handler, FTS5, exactly-once checkpoint) in commits of 1,000
//! transactions, against raw rusqlite inserting the same rows (tweets table + FTS5, prepared
//! statements, one transaction per 1,000 rows) on a file with the same pragmas, in the same run.
//!
//! `cargo bench --bench realize`; `BENCH_QUICK=1` for a few seconds (CI), `BENCH_FULL=1` for
//! 10^6 tweets. For profiling, `BENCH_N=20000 BENCH_ONLY=sink` (or `raw`) runs one side once.
//! Results and the machine are recorded in BENCHMARKS.md ("Realization").

use std::path::Path;
use std::time::{Duration, Instant};

use replikativ::Id;
use replikativ::realize::{Sink, TxParams};
use replikativ::tweets::{
    ADD_TWEET, TWEETS_SCHEMA, encode_params, open_sink, synthetic_tweets, username_of,
};
use rusqlite::{Connection, TransactionBehavior, params};
use serde_json::Value;

/// Transactions per commit (the collector's default batch) and rows per raw transaction.
const BATCH: usize = 1_000;

/// One `tweets` row, extracted before timing so the baseline measures SQLite alone.
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
}

fn text_field(tweet: &Value, key: &str) -> Option<String> {
    match tweet.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn row_of(tweet: &Value) -> Row {
    let metric = |name: &str| tweet.get("public_metrics")?.get(name)?.as_i64();
    Row {
        id: tweet["id"].as_str().unwrap_or_default().to_string(),
        text: tweet["text"].as_str().unwrap_or_default().to_string(),
        created_at: text_field(tweet, "created_at"),
        author_id: text_field(tweet, "author_id"),
        username: username_of(tweet).map(str::to_string),
        retweets: metric("retweet_count"),
        likes: metric("like_count"),
        lang: tweet
            .get("lang")
            .and_then(Value::as_str)
            .map(str::to_string),
        raw: tweet.to_string(),
    }
}

fn sink_run(path: &Path, txs: &[TxParams]) -> Duration {
    let mut sink = open_sink(path).expect("open sink");
    let start = Instant::now();
    for (k, chunk) in txs.chunks(BATCH).enumerate() {
        let commit = Id::of(format!("bench commit {k}").as_bytes());
        sink.apply_commit(commit, chunk).expect("apply");
    }
    start.elapsed()
}

fn raw_run(path: &Path, rows: &[Row]) -> Duration {
    let mut conn = Connection::open(path).expect("open raw");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("sync");
    conn.execute_batch(TWEETS_SCHEMA).expect("schema");
    let start = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO tweets (id, text, created_at, author_id, username,
                     retweet_count, like_count, lang, raw) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
                )
                .expect("prepare");
            let mut fts = tx
                .prepare_cached("INSERT INTO tweets_fts (rowid, text) VALUES (?1, ?2)")
                .expect("prepare fts");
            for r in chunk {
                let inserted = insert
                    .execute(params![
                        r.id,
                        r.text,
                        r.created_at,
                        r.author_id,
                        r.username,
                        r.retweets,
                        r.likes,
                        r.lang,
                        r.raw
                    ])
                    .expect("insert");
                if inserted == 1 {
                    fts.execute(params![tx.last_insert_rowid(), r.text])
                        .expect("fts");
                }
            }
        }
        tx.commit().expect("commit");
    }
    start.elapsed()
}

fn count(path: &Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row("SELECT COUNT(*) FROM tweets", [], |r| r.get(0))
        .expect("count")
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let full = std::env::var_os("BENCH_FULL").is_some();
    let (mut n, rounds) = match (quick, full) {
        (true, _) => (5_000, 1),
        (false, true) => (1_000_000, 1),
        (false, false) => (100_000, 3),
    };
    if let Some(forced) = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()) {
        n = forced;
    }
    // Encoded once, as the collector does; neither side's timing includes this.
    let tweets: Vec<Value> = synthetic_tweets(n).map(|r| r.params).collect();
    let txs: Vec<TxParams> = tweets
        .iter()
        .map(|t| (ADD_TWEET.to_string(), encode_params(t)))
        .collect();
    let rows: Vec<Row> = tweets.iter().map(row_of).collect();
    drop(tweets);

    let dir = tempfile::tempdir().expect("tempdir");
    if let Ok(side) = std::env::var("BENCH_ONLY") {
        let path = dir.path().join("only.sqlite");
        let took = match side.as_str() {
            "sink" => sink_run(&path, &txs),
            "raw" => raw_run(&path, &rows),
            other => panic!("BENCH_ONLY is sink or raw, not {other:?}"),
        };
        println!(
            "realize/{side} {n} tweets: {:.0} tweets/s",
            n as f64 / took.as_secs_f64()
        );
        return;
    }
    let (mut best_sink, mut best_raw) = (Duration::MAX, Duration::MAX);
    for round in 0..rounds {
        // Alternate the order so neither side always runs on a warmer cache.
        let sink_path = dir.path().join(format!("sink-{round}.sqlite"));
        let raw_path = dir.path().join(format!("raw-{round}.sqlite"));
        let (s, r) = if round % 2 == 0 {
            let s = sink_run(&sink_path, &txs);
            (s, raw_run(&raw_path, &rows))
        } else {
            let r = raw_run(&raw_path, &rows);
            (sink_run(&sink_path, &txs), r)
        };
        assert_eq!(count(&sink_path), n as i64, "the sink stored every tweet");
        assert_eq!(
            count(&raw_path),
            n as i64,
            "the baseline stored every tweet"
        );
        println!(
            "round {round}: sink {:.3} s, raw {:.3} s",
            s.as_secs_f64(),
            r.as_secs_f64()
        );
        best_sink = best_sink.min(s);
        best_raw = best_raw.min(r);
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "realize/sqlite_sink   {n} tweets, commits of {BATCH}: {:>10.0} tweets/s",
        rate(best_sink)
    );
    println!(
        "realize/raw_rusqlite  {n} tweets, txs of {BATCH}:     {:>10.0} tweets/s",
        rate(best_raw)
    );
    println!(
        "realize/ratio         sink / raw = {:.2} (best of {rounds})",
        rate(best_sink) / rate(best_raw)
    );
}
