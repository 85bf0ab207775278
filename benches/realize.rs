//! Realization throughput: tweets per second applied through the tweet SQLite sink
//! (`open_sink`: `add-tweet` handler, FTS5, exactly-once checkpoint) in commits of 1,000
//! transactions, against raw rusqlite inserting the same rows (tweets table + FTS5, prepared
//! statements, one transaction per 1,000 rows) on a file with the same pragmas, in the same run.
//!
//! Wall time, the calling thread's CPU time and the whole process's CPU time (the sink prepares rows
//! on a second thread) are reported (best of the rounds, and the median of
//! the rounds' own ratios). `BENCH_ROUNDS` overrides the rounds.
//!
//! `cargo bench --bench realize`; `BENCH_QUICK=1` for a few seconds (CI), `BENCH_FULL=1` for
//! 10^6 tweets. For profiling, `BENCH_N=20000 BENCH_ONLY=sink` (or `raw`, or `decode`: the rows read from the params
//! bytes alone) runs one side once.
//! Results and the machine are recorded in BENCHMARKS.md ("Realization").

use std::path::Path;
use std::time::{Duration, Instant};

use replikativ::Id;
use replikativ::realize::{Sink, TxParams};
use replikativ::tweets::{
    ADD_TWEET, TWEETS_SCHEMA, TweetColumns, encode_params, open_sink, synthetic_tweets, username_of,
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

/// CPU time of this thread so far (both sides run on the calling thread; SQLite's writes
/// are buffered in WAL mode with `synchronous = NORMAL`, so CPU time is most of their cost and
/// is far less disturbed than wall time by other jobs on a shared machine).
fn thread_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// CPU time of the whole process so far (user + system, every thread): the sink prepares
/// rows on a second thread, whose CPU the calling thread's time leaves out.
fn process_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to overwrite.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the pointer it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF)");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Wall and CPU time of one side's run.
#[derive(Clone, Copy)]
struct Took {
    wall: Duration,
    /// The calling thread's CPU.
    cpu: Duration,
    /// Every thread's CPU.
    all_cpu: Duration,
}

fn timed(run: impl FnOnce()) -> Took {
    let (cpu, all, start) = (thread_cpu(), process_cpu(), Instant::now());
    run();
    Took {
        wall: start.elapsed(),
        cpu: thread_cpu() - cpu,
        all_cpu: process_cpu() - all,
    }
}

fn sink_run(path: &Path, txs: &[TxParams]) -> Took {
    let mut sink = open_sink(path).expect("open sink");
    timed(|| sink_apply(&mut sink, txs))
}

fn sink_apply(sink: &mut impl Sink, txs: &[TxParams]) {
    for (k, chunk) in txs.chunks(BATCH).enumerate() {
        let commit = Id::of(format!("bench commit {k}").as_bytes());
        sink.apply_commit(commit, chunk).expect("apply");
    }
}

fn raw_run(path: &Path, rows: &[Row]) -> Took {
    let mut conn = Connection::open(path).expect("open raw");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL")
        .expect("sync");
    conn.execute_batch(TWEETS_SCHEMA).expect("schema");
    timed(|| raw_insert(&mut conn, rows))
}

fn raw_insert(conn: &mut Connection, rows: &[Row]) {
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
    let rounds = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(rounds);
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
            // The sink's decoding alone: each params' row read from its bytes (profile aid).
            "decode" => timed(|| {
                for (_, bytes) in &txs {
                    std::hint::black_box(TweetColumns::of_params(bytes).expect("a tweet row"));
                }
            }),
            other => panic!("BENCH_ONLY is sink, raw or decode, not {other:?}"),
        };
        println!(
            "realize/{side} {n} tweets: {:.0} tweets/s ({:.0}/s of CPU)",
            n as f64 / took.wall.as_secs_f64(),
            n as f64 / took.cpu.as_secs_f64()
        );
        return;
    }
    let mut took: Vec<(Took, Took)> = Vec::new();
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
            "round {round}: sink {:.3} s ({:.3} s CPU, {:.3} s all threads), raw {:.3} s ({:.3} s CPU)",
            s.wall.as_secs_f64(),
            s.cpu.as_secs_f64(),
            s.all_cpu.as_secs_f64(),
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64()
        );
        took.push((s, r));
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    type Pick = fn(&Took) -> Duration;
    // "CPU" is the calling thread's (the sink's writer); "CPU*" every thread's (the sink's
    // preparing thread included: the cost in CPU, not in time).
    let picks: [(&str, Pick); 3] = [
        ("wall", |t| t.wall),
        ("CPU", |t| t.cpu),
        ("CPU*", |t| t.all_cpu),
    ];
    for (what, pick) in picks {
        let best_sink = took.iter().map(|t| pick(&t.0)).min().expect("a round");
        let best_raw = took.iter().map(|t| pick(&t.1)).min().expect("a round");
        let mut ratios: Vec<f64> = took
            .iter()
            .map(|t| pick(&t.1).as_secs_f64() / pick(&t.0).as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        println!(
            "realize/{what:<4} sink {:>8.0} tweets/s, raw {:>8.0} tweets/s (best of {rounds}): \
             sink / raw = {:.2}; median of the rounds' ratios {:.2}",
            rate(best_sink),
            rate(best_raw),
            rate(best_sink) / rate(best_raw),
            ratios[ratios.len() / 2]
        );
    }
}
