//! Realization sinks: exactly-once application, rollback on handler errors, panics and real
//! crashes (an aborted child process), and the memory and JSON-lines sinks.

use std::collections::HashSet;

use replikativ::Id;
use replikativ::realize::{
    HandlerError, InjectedFailure, JsonlSink, MemorySink, Sink, SinkError, SqliteSink, TxParams,
};
use replikativ::tweets::{ADD_TWEET, TWEETS_SCHEMA, TweetDb, add_tweet, encode_params, open_sink};
use serde_json::{Value, json};

fn tweet(id: &str, author: &str) -> TxParams {
    let params = json!({"id": id, "text": format!("tweet {id}"), "author_id": author,
                        "author": {"id": author, "username": format!("user{author}")}});
    (ADD_TWEET.to_string(), encode_params(&params))
}

fn commit(n: u32) -> Id {
    Id::of(format!("commit {n}").as_bytes())
}

fn account_ops(db: &std::path::Path, author: &str) -> u64 {
    TweetDb::open(db)
        .expect("open")
        .account_ops(author)
        .expect("ops")
}

#[test]
fn applying_the_same_commit_twice_changes_nothing_the_second_time() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("a.sqlite");
    let mut sink = open_sink(&db).expect("sink");
    let txs = vec![tweet("1", "7"), tweet("2", "7"), tweet("1", "7")];
    sink.apply_commit(commit(1), &txs).expect("apply");
    sink.apply_commit(commit(1), &txs)
        .expect("second apply is a no-op");
    let stats = TweetDb::open(&db).expect("open").stats().expect("stats");
    assert_eq!(
        (stats.tweets, stats.ops_applied, stats.commits_applied),
        (2, 3, 1)
    );
    assert_eq!(account_ops(&db, "7"), 3);
    // After reopening (a restart) the checkpoint still says so.
    drop(sink);
    let mut sink = open_sink(&db).expect("reopen");
    assert_eq!(sink.applied().expect("applied"), HashSet::from([commit(1)]));
    sink.apply_commit(commit(1), &txs)
        .expect("no-op after restart");
    assert_eq!(account_ops(&db, "7"), 3);
}

#[test]
fn a_failing_transaction_rolls_back_the_whole_commit() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("a.sqlite");
    let mut sink = open_sink(&db).expect("sink");
    let bad = (ADD_TWEET.to_string(), encode_params(&json!({"id": "9"})));
    let err = sink
        .apply_commit(commit(1), &[tweet("1", "7"), bad])
        .expect_err("a tweet without text is refused");
    assert!(err.is_deterministic(), "{err}");
    assert!(
        matches!(&err, SinkError::Handler { tx: 1, op, .. } if op == ADD_TWEET),
        "{err}"
    );
    assert!(sink.applied().expect("applied").is_empty());
    assert_eq!(TweetDb::open(&db).expect("open").count().expect("count"), 0);
    assert_eq!(account_ops(&db, "7"), 0);

    let err = sink
        .apply_commit(commit(2), &[("delete-everything".into(), vec![0x90])])
        .expect_err("unknown op");
    assert!(matches!(err, SinkError::UnknownOp { tx: 0, .. }) && err.is_deterministic());
    let err = sink
        .apply_commit(commit(3), &[(ADD_TWEET.into(), vec![0xc1])])
        .expect_err("bad params");
    assert!(matches!(err, SinkError::BadParams { .. }) && err.is_deterministic());
}

#[test]
fn a_panicking_handler_is_an_error_and_the_sink_keeps_working() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("a.sqlite");
    let mut sink = SqliteSink::open(&db)
        .expect("open")
        .with_schema(TWEETS_SCHEMA)
        .expect("schema")
        .handler(ADD_TWEET, add_tweet)
        .handler("explode", |tx, _v: &Value| {
            tx.execute(
                "INSERT INTO account_ops (author_id, ops) VALUES ('boom', 1)",
                [],
            )?;
            panic!("handler bug")
        });
    let err = sink
        .apply_commit(
            commit(1),
            &[
                tweet("1", "7"),
                ("explode".into(), encode_params(&json!({}))),
            ],
        )
        .expect_err("panic becomes an error");
    match &err {
        SinkError::HandlerPanicked { tx, message, .. } => {
            assert_eq!((*tx, message.as_str()), (1, "handler bug"));
        }
        other => panic!("expected HandlerPanicked, got {other:?}"),
    }
    assert!(err.is_deterministic());
    assert_eq!(account_ops(&db, "boom") + account_ops(&db, "7"), 0);
    sink.apply_commit(commit(2), &[tweet("2", "7")])
        .expect("still usable");
    assert_eq!(sink.applied().expect("applied"), HashSet::from([commit(2)]));
}

#[test]
fn a_handler_error_from_a_busy_database_is_transient() {
    let busy = HandlerError::Sql(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        None,
    ));
    assert!(!busy.is_deterministic());
    let err = SinkError::Handler {
        commit: commit(1),
        tx: 0,
        op: ADD_TWEET.into(),
        source: Box::new(busy),
    };
    assert!(!err.is_deterministic());
}

/// The child half of the crash test: applies a commit whose second transaction aborts the
/// process mid-transaction (no unwinding, no rollback code runs).
fn crash_child(db: &str) {
    let mut sink = open_sink(db)
        .expect("sink")
        .handler("abort", |_tx, _v: &Value| {
            std::process::abort();
        });
    let _ = sink.apply_commit(
        commit(1),
        &[tweet("1", "7"), ("abort".into(), encode_params(&json!({})))],
    );
    unreachable!("the handler aborts the process");
}

#[test]
fn a_crash_inside_a_commit_leaves_neither_effects_nor_checkpoint() {
    if let Ok(db) = std::env::var("REPLIKATIV_SINK_CRASH_CHILD") {
        crash_child(&db);
    }
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("a.sqlite");
    let status = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            &crate::common::test_name(
                module_path!(),
                "a_crash_inside_a_commit_leaves_neither_effects_nor_checkpoint",
            ),
        ])
        .env("REPLIKATIV_SINK_CRASH_CHILD", &db)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run child");
    assert!(!status.success(), "the child must have crashed");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGABRT),
            "crashed in the handler: {status}"
        );
    }
    let mut sink = open_sink(&db).expect("reopen after crash");
    assert!(sink.applied().expect("applied").is_empty());
    assert_eq!(TweetDb::open(&db).expect("open").count().expect("count"), 0);
    sink.apply_commit(commit(1), &[tweet("1", "7")])
        .expect("re-apply");
    assert_eq!(account_ops(&db, "7"), 1);
}

#[test]
fn queries_read_while_the_sink_holds_a_write_transaction() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("a.sqlite");
    let mut sink = open_sink(&db).expect("sink");
    sink.apply_commit(commit(1), &[tweet("1", "7")])
        .expect("apply");
    // EXCLUSIVE keeps every reader out unless the file is in WAL mode. The writer is held by
    // this thread until after the read, so a blocked reader cannot wait it out: it fails
    // with SQLITE_BUSY once its busy timeout passes.
    sink.connection()
        .execute_batch("BEGIN EXCLUSIVE; DELETE FROM tweets;")
        .expect("write");
    let count = TweetDb::open(&db)
        .expect("open while the sink writes")
        .count()
        .expect("count while the sink writes");
    assert_eq!(count, 1, "the reader sees the last committed state");
    sink.connection()
        .execute_batch("ROLLBACK")
        .expect("rollback");
}

#[test]
fn an_operator_skip_is_recorded_and_counts_as_applied() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("a.sqlite");
    let mut sink = open_sink(&db).expect("sink");
    sink.record_skip(commit(5), "poison record").expect("skip");
    sink.apply_commit(commit(5), &[tweet("1", "7")])
        .expect("no-op: skipped");
    assert_eq!(sink.applied().expect("applied"), HashSet::from([commit(5)]));
    let skipped = sink.skipped().expect("skipped");
    assert_eq!(
        (skipped[0].commit, skipped[0].reason.as_str()),
        (commit(5), "poison record")
    );
    let stats = TweetDb::open(&db).expect("open").stats().expect("stats");
    assert_eq!((stats.tweets, stats.commits_applied), (0, 0));
    let mut again = SqliteSink::open_existing(&db).expect("open existing");
    assert_eq!(again.skipped().expect("skipped").len(), 1);
    assert!(SqliteSink::open_existing(dir.path().join("missing.sqlite")).is_err());
}

#[test]
fn a_sink_refuses_a_file_that_belongs_to_something_else() {
    let dir = tempfile::tempdir().expect("tmp");
    let other = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&other)
        .and_then(|c| c.execute_batch("CREATE TABLE accounts (x)"))
        .expect("other db");
    let err = open_sink(&other).expect_err("foreign database");
    assert!(matches!(err, SinkError::Foreign { .. }) && err.to_string().contains("other.sqlite"));
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, [7u8; 4096]).expect("write");
    let err = open_sink(&junk).expect_err("not a database");
    assert!(matches!(err, SinkError::Foreign { .. }), "{err}");
}

#[test]
fn the_memory_sink_applies_once_and_injects_failures() {
    let sink = MemorySink::accepting(&[ADD_TWEET]);
    let mut s = sink.clone();
    s.apply_commit(commit(1), &[tweet("1", "7")])
        .expect("apply");
    s.apply_commit(commit(1), &[tweet("1", "7")])
        .expect("no-op");
    assert_eq!(sink.snapshot().ops.len(), 1);
    assert_eq!(sink.snapshot().ops[0].params["id"], "1");
    sink.fail_next(InjectedFailure::Transient);
    assert!(
        !s.apply_commit(commit(2), &[tweet("2", "7")])
            .expect_err("inj")
            .is_deterministic()
    );
    s.apply_commit(commit(2), &[tweet("2", "7")])
        .expect("then it works");
    sink.poison(commit(3));
    for _ in 0..2 {
        assert!(
            s.apply_commit(commit(3), &[tweet("3", "7")])
                .expect_err("poison")
                .is_deterministic()
        );
    }
    sink.fail_next(InjectedFailure::Panic);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = s.apply_commit(commit(4), &[tweet("4", "7")]);
    }));
    assert!(panicked.is_err());
    let err = s
        .apply_commit(commit(6), &[("other".into(), vec![0x90])])
        .expect_err("unknown");
    assert!(matches!(err, SinkError::UnknownOp { .. }));
    s.apply_commit(commit(4), &[tweet("4", "7")])
        .expect("usable after a panic");
    assert_eq!(sink.snapshot().applied.len(), 3);
}

#[test]
fn the_jsonl_sink_rolls_back_an_unfinished_commit_on_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ops.jsonl");
    let mut sink = JsonlSink::open(&path).expect("open");
    sink.apply_commit(commit(1), &[tweet("1", "7"), tweet("2", "7")])
        .expect("apply");
    sink.apply_commit(commit(1), &[tweet("1", "7")])
        .expect("no-op");
    drop(sink);
    let committed = std::fs::read(&path).expect("read");
    assert_eq!(committed.iter().filter(|b| **b == b'\n').count(), 2);
    // A crash after the ops of commit 2 were appended, while its checkpoint was half-written.
    let mut torn = committed.clone();
    torn.extend_from_slice(b"{\"commit\":\"c2\",\"tx\":0}\n");
    std::fs::write(&path, &torn).expect("write");
    let sidecar = dir.path().join("ops.jsonl.applied");
    let mut side = std::fs::read(&sidecar).expect("read sidecar");
    side.extend_from_slice(b"{\"commit\":\"");
    std::fs::write(&sidecar, &side).expect("write sidecar");

    let mut sink = JsonlSink::open(&path).expect("reopen");
    assert_eq!(std::fs::read(&path).expect("read"), committed);
    assert_eq!(sink.applied().expect("applied"), HashSet::from([commit(1)]));
    sink.apply_commit(commit(2), &[tweet("3", "7")])
        .expect("apply 2");
    sink.record_skip(commit(3), "operator").expect("skip");
    drop(sink);
    let mut sink = JsonlSink::open(&path).expect("reopen");
    assert_eq!(sink.applied().expect("applied").len(), 3);
    assert_eq!(sink.skipped().expect("skipped").len(), 1);
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["params"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["1", "2", "3"]);
}

fn commit_authors(db: &std::path::Path) -> Vec<(String, Option<String>)> {
    let conn = rusqlite::Connection::open(db).expect("open");
    let mut stmt = conn
        .prepare("SELECT id, commit_author FROM tweets ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Each tweet records who made the commit that brought it (DESIGN §11): the realizer tells the
/// sink, a repeat keeps the first author, and a caller that does not say leaves NULL.
#[test]
fn tweets_record_the_author_of_their_commit() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("a.sqlite");
    let mut sink = open_sink(&db).expect("sink");
    sink.apply_commit_by(commit(1), "ed25519:A", &[tweet("1", "7"), tweet("2", "7")])
        .expect("apply");
    sink.apply_commit_by(commit(2), "unsigned", &[tweet("2", "7"), tweet("3", "7")])
        .expect("apply");
    sink.apply_commit(commit(3), &[tweet("4", "7")])
        .expect("apply");
    assert_eq!(
        commit_authors(&db),
        [
            ("1".to_owned(), Some("ed25519:A".to_owned())),
            ("2".to_owned(), Some("ed25519:A".to_owned())),
            ("3".to_owned(), Some("unsigned".to_owned())),
            ("4".to_owned(), None),
        ]
    );
}

/// A sink made before commits were signed gains the column in place; its tweets stay.
#[test]
fn an_existing_sink_without_commit_author_is_migrated_in_place() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("old.sqlite");
    let old_schema = TWEETS_SCHEMA.replace(",\n    commit_author TEXT", "");
    assert_ne!(old_schema, TWEETS_SCHEMA, "the old schema lacks the column");
    let old = SqliteSink::open(&db)
        .expect("sink")
        .with_schema(&old_schema)
        .expect("schema");
    // A row as the previous code's handler wrote it.
    old.connection()
        .execute(
            "INSERT INTO tweets (id, text, raw) VALUES ('1', 'tweet 1', '{}')",
            [],
        )
        .expect("old row");
    drop(old);
    let mut sink = open_sink(&db).expect("migrated");
    sink.apply_commit_by(commit(2), "ed25519:B", &[tweet("2", "7")])
        .expect("apply");
    assert_eq!(
        commit_authors(&db),
        [
            ("1".to_owned(), None),
            ("2".to_owned(), Some("ed25519:B".to_owned()))
        ]
    );
    drop(sink);
    open_sink(&db).expect("opening again changes nothing");
}
