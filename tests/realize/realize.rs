//! Realization under failure: poison records park the stream (and an operator skip resumes
//! it), a sink panic restarts the realizer, and a realizer process killed with SIGKILL at
//! random moments still applies every op exactly once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::append_lines;
use crate::common::stage_support::{fresh_key, memory_realizer, note, tx, wait_status};
use crate::common::wait::eventually;
use replikativ::Node;
use replikativ::node::RealizerSpec;
use replikativ::realize::realizer::{ConflictPolicy, MAX_ATTEMPTS, RealizerStatus};
use replikativ::realize::{InjectedFailure, MemorySink, Sink, SinkError};
use replikativ_actors::{ChildState, EventKind};
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

#[test]
fn a_poison_commit_is_retried_with_backoff_then_parks_reporting_its_id_and_resumes_after_a_skip() {
    actix_rt::System::new().block_on(async {
        let key = fresh_key();
        // `mem` has no handler for `poison` (a deterministic UnknownOp); `all` accepts it.
        let strict = MemorySink::accepting(&["note"]);
        let lenient = MemorySink::new();
        let node = Node::builder()
            .realize(memory_realizer("mem", &key, &strict, ConflictPolicy::Wait))
            .realize(memory_realizer("all", &key, &lenient, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let mut events = node.events();
        let stage = node.stage();
        let realizer = node.realizer("mem").expect("mem");
        let mut status = realizer.status();

        let c1 = stage.transact(&key, vec![note("c1")]).await.expect("c1");
        let poison = stage
            .transact(&key, vec![tx("poison", serde_json::json!({"x": 1}))])
            .await
            .expect("poison");
        let parked = wait_status(&mut status, T, |s| {
            matches!(s, RealizerStatus::Parked { .. })
        })
        .await;
        let RealizerStatus::Parked { commit, reason } = parked else {
            unreachable!()
        };
        assert_eq!(commit, poison, "the status names the poison commit");
        assert!(
            reason.contains("no handler for op \"poison\""),
            "reason: {reason}"
        );

        // It was retried: each failed attempt but the last was a restart with a backoff.
        let mut restarts = Vec::new();
        while let Ok(ev) = events.try_recv() {
            if let EventKind::RestartScheduled { child, backoff, .. } = &ev.kind
                && child.as_str() == "mem"
            {
                restarts.push(*backoff);
            }
        }
        assert_eq!(
            restarts.len(),
            MAX_ATTEMPTS as usize - 1,
            "restarts before parking: {restarts:?}"
        );
        assert!(restarts.iter().all(|b| !b.is_zero()), "{restarts:?}");

        // Parked: later commits are not applied by `mem`; the node and `all` keep working.
        let c3 = stage.transact(&key, vec![note("c3")]).await.expect("c3");
        let all = node.realizer("all").expect("all");
        eventually("the other realizer to apply everything", T, || {
            all.is_applied(&c3)
        })
        .await;
        assert!(all.is_applied(&poison));
        assert!(realizer.is_applied(&c1) && !realizer.is_applied(&c3));
        let realizers = node
            .supervisor()
            .supervisor("realizers")
            .await
            .expect("realizers");
        for child in realizers.which_children().await.expect("children") {
            assert_eq!(child.state, ChildState::Running, "{child:?}");
        }

        // The operator skips it; the realizer resumes and applies what follows, once.
        let mut handle = strict.clone();
        handle.record_skip(poison, "test skip").expect("skip");
        eventually("the realizer to resume after the skip", T, || {
            realizer.is_applied(&c3)
        })
        .await;
        wait_status(&mut status, T, |s| *s == RealizerStatus::Idle).await;
        let snap = strict.snapshot();
        let tags: Vec<&str> = snap
            .ops
            .iter()
            .map(|o| o.params["tag"].as_str().expect("tag"))
            .collect();
        assert_eq!(tags, ["c1", "c3"]);
        assert_eq!(snap.skipped.len(), 1);
        assert_eq!(snap.skipped[0].commit, poison);
        node.shutdown().await;
    });
}

#[test]
fn a_sink_that_panics_restarts_the_realizer_which_then_applies_the_commit_once() {
    actix_rt::System::new().block_on(async {
        let key = fresh_key();
        let sink = MemorySink::new();
        sink.fail_next(InjectedFailure::Panic);
        sink.fail_next(InjectedFailure::Transient);
        let node = Node::builder()
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let mut events = node.events();
        let realizer = node.realizer("mem").expect("mem");
        let c1 = node
            .stage()
            .transact(&key, vec![note("c1")])
            .await
            .expect("c1");
        eventually("the commit to be applied", T, || realizer.is_applied(&c1)).await;
        let mut restarted = 0;
        while let Ok(ev) = events.try_recv() {
            if matches!(&ev.kind, EventKind::ChildRestarted { child, .. } if child.as_str() == "mem")
            {
                restarted += 1;
            }
        }
        assert_eq!(restarted, 2, "one restart per injected failure");
        assert_eq!(sink.snapshot().ops.len(), 1);
        assert!(!matches!(
            *realizer.status().borrow(),
            RealizerStatus::Parked { .. }
        ));
        node.shutdown().await;
    });
}

fn sqlite_spec(key: &replikativ::crdt::CrdtKey, path: &Path) -> RealizerSpec {
    let path = path.to_path_buf();
    RealizerSpec {
        name: "sqlite".into(),
        key: key.clone(),
        open: Arc::new(move || -> Result<Box<dyn Sink>, SinkError> {
            Ok(Box::new(replikativ::tweets::open_sink(&path)?))
        }),
        policy: ConflictPolicy::Wait,
    }
}

fn tweet(id: &str, author: &str) -> (String, Vec<u8>) {
    tx(
        "add-tweet",
        serde_json::json!({"id": id, "text": format!("tweet {id}"), "author_id": author}),
    )
}

#[test]
fn a_poison_tweet_parks_the_sqlite_realizer_until_the_realize_skip_command_skips_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("tweets.sqlite");
    actix_rt::System::new().block_on(async {
        let key = fresh_key();
        let node = Node::builder()
            .store_dir(dir.path().join("store"))
            .realize(sqlite_spec(&key, &db))
            .start()
            .await
            .expect("start");
        let stage = node.stage();
        let realizer = node.realizer("sqlite").expect("sqlite");
        let mut status = realizer.status();
        stage
            .transact(&key, vec![tweet("1", "u1")])
            .await
            .expect("t1");
        // Params that decode but that the handler refuses: a tweet without text.
        let poison = stage
            .transact(
                &key,
                vec![
                    tweet("2", "u1"),
                    tx("add-tweet", serde_json::json!({"id": "3"})),
                ],
            )
            .await
            .expect("poison");
        let t4 = stage
            .transact(&key, vec![tweet("4", "u2")])
            .await
            .expect("t4");
        let RealizerStatus::Parked { commit, reason } = wait_status(&mut status, T, |s| {
            matches!(s, RealizerStatus::Parked { .. })
        })
        .await
        else {
            unreachable!()
        };
        assert_eq!(commit, poison);
        assert!(reason.contains("string text"), "reason: {reason}");
        // All or nothing: the poison commit's first, valid tweet is not in the table either.
        let conn = rusqlite::Connection::open(&db).expect("sqlite");
        let count = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT COUNT(*) FROM tweets", [], |r| r.get(0))
                .expect("count")
        };
        assert_eq!(count(&conn), 1);

        let out = crate::common::run_ok(
            &[
                "realize-skip",
                "--sqlite",
                db.to_str().expect("utf-8"),
                "--commit",
                &poison.to_string(),
                "--reason",
                "poison tweet",
            ],
            dir.path(),
        );
        assert!(out.contains(&poison.to_string()), "{out}");
        eventually("the realizer to apply what follows the skip", T, || {
            realizer.is_applied(&t4)
        })
        .await;
        assert_eq!(count(&conn), 2);
        let skipped: (String, String) = conn
            .query_row("SELECT commit_id, reason FROM skipped", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("skipped row");
        assert_eq!(skipped, (poison.to_string(), "poison tweet".to_string()));
        node.shutdown().await;
    });
}

/// `author_id` as the tweet handler keys its counter.
fn author_of(params: &Value) -> String {
    match params.get("author_id") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Every line of the shipped data, twice (a source that repeats its tweets), and how many
/// distinct tweets each author has in them: the collector commits each tweet id once, so
/// the non-idempotent `account_ops` counters must equal these.
fn lines_with_counts() -> (Vec<String>, HashMap<String, i64>) {
    let mut files: Vec<_> = std::fs::read_dir(crate::common::data_dir())
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for _ in 0..2 {
        for f in &files {
            let text = std::fs::read_to_string(f).expect("data");
            lines.extend(text.lines().map(|l| format!("{l}\n")));
        }
    }
    let mut per_author = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for line in &lines {
        for t in
            crate::common::tweets_oracle::tweets_in(line.trim_end().as_bytes()).unwrap_or_default()
        {
            let id = t["id"].as_str().unwrap_or_default().to_string();
            if seen.insert(id) {
                *per_author.entry(author_of(&Value::Object(t))).or_insert(0) += 1;
            }
        }
    }
    (lines, per_author)
}

/// How many `add-tweet` transactions each author has in the default CDVCS of the store `dir`
/// (what the realizer must have applied, each exactly once).
fn committed_per_author(dir: &Path) -> HashMap<String, i64> {
    use replikativ::store::{Store, keys};
    let store = Store::open(dir).expect("open the collected store");
    let user = "mail:twitter@crawler.com";
    let crdt: uuid::Uuid = "12d49511-e733-4007-937b-460c3794fae9"
        .parse()
        .expect("uuid");
    let mut per_author = HashMap::new();
    for (k, _) in store
        .scan_state(&keys::graph_prefix(user, &crdt))
        .expect("graph")
    {
        let id = keys::graph_entry_commit(&k).expect("graph key");
        let bytes = store.get_value(&id).expect("read").expect("commit");
        let commit = replikativ::crdt::Commit::decode(&bytes).expect("decode");
        if commit.commit.parents.is_empty() {
            continue;
        }
        for tx in commit.commit.transactions {
            let params = store.get_value(&tx.params).expect("read").expect("params");
            let value = replikativ::tweets::decode_params(&params).expect("params decode");
            *per_author.entry(author_of(&value)).or_insert(0) += 1;
        }
    }
    per_author
}

#[test]
fn a_realizer_process_killed_with_sigkill_at_random_moments_applies_every_op_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let (lines, expected) = lines_with_counts();
    let total: i64 = expected.values().sum();
    assert!(total > 500, "enough records to kill mid-way: {total}");
    let source = cwd.join("source.jsonl");
    let kills = crate::common::iterations(30, 20);
    let chunk = lines.len().div_ceil(kills + 1);
    let mut chunks = lines.chunks(chunk);
    append_lines(&source, chunks.next().expect("a first chunk"));

    // The collector tails the growing file and serves it, so every analyze run has new
    // commits to replicate and realize when it is killed.
    let port = crate::common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let collect = [
        "collect",
        "--store",
        "collected",
        "--source",
        "source.jsonl",
        "--batch",
        "3",
        "--flush-ms",
        "50",
    ];
    let mut following = collect.to_vec();
    following.extend(["--follow", "--listen", &listen]);
    let mut collector = crate::common::spawn(&following, cwd, "collect.log");
    crate::common::wait_port(port, T);
    let url = format!("ws://{listen}/");
    let args = [
        "analyze",
        "--store",
        "analysis",
        "--connect",
        &url,
        "--sqlite",
        "tweets.sqlite",
    ];
    let applied_now = || -> i64 {
        rusqlite::Connection::open(cwd.join("tweets.sqlite"))
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM applied", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let mut progress = Vec::new();
    for _ in 0..kills {
        if let Some(next) = chunks.next() {
            append_lines(&source, next);
        }
        let mut follow = args.to_vec();
        follow.push("--follow");
        let mut child = crate::common::spawn(&follow, cwd, "analyze.log");
        let pause = rand::random_range(100..1500);
        std::thread::sleep(Duration::from_millis(pause));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "analyze --follow exited early; see {}/analyze.log",
            cwd.display()
        );
        crate::common::kill(&mut child);
        progress.push(applied_now());
    }
    for rest in chunks {
        append_lines(&source, rest);
    }
    // The collector commits what it read and stops; a second run commits the rest of the
    // file from its checkpoint. Then a plain peer serves the whole CDVCS.
    crate::common::terminate(&collector);
    let status = crate::common::wait_exit(&mut collector, T).expect("collector stops on SIGTERM");
    assert!(status.success(), "collector exit {status:?}");
    crate::common::run_ok(&collect, cwd);
    let mut peer = crate::common::spawn(
        &["peer", "--store", "collected", "--listen", &listen],
        cwd,
        "peer.log",
    );
    crate::common::wait_port(port, T);
    let out = crate::common::run(&args, cwd);
    let log = std::fs::read_to_string(cwd.join("analyze.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "final analyze failed: {}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    crate::common::kill(&mut peer);
    assert!(!log.contains("panicked"), "{log}");

    let conn = rusqlite::Connection::open(cwd.join("tweets.sqlite")).expect("sqlite");
    let mut stmt = conn
        .prepare("SELECT author_id, ops FROM account_ops")
        .expect("prepare");
    let got: HashMap<String, i64> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    // The collector committed each tweet of the source once (oracle: the source's ids).
    let committed = committed_per_author(&cwd.join("collected"));
    assert_eq!(
        committed,
        expected,
        "tweets committed per author differ from the source's distinct tweets; dir {}",
        cwd.display()
    );
    let mut diff: Vec<(String, i64, i64)> = expected
        .iter()
        .filter(|(a, n)| got.get(*a) != Some(n))
        .map(|(a, n)| (a.clone(), *n, got.get(a).copied().unwrap_or(0)))
        .collect();
    diff.extend(
        got.iter()
            .filter(|(a, _)| !expected.contains_key(*a))
            .map(|(a, n)| (a.clone(), 0, *n)),
    );
    assert!(
        diff.is_empty(),
        "per-author op counts after {kills} SIGKILLs differ (author, expected, got; a double \
         apply shows as a larger count): {diff:?}; ops expected {total}, got {}; dir {}",
        got.values().sum::<i64>(),
        dir.keep().display()
    );
    let log_json = crate::common::run_json(&["log", "--store", "analysis"], cwd);
    let commits = log_json["commits"].as_i64().expect("commits");
    let applied: i64 = conn
        .query_row("SELECT COUNT(*) FROM applied", [], |r| r.get(0))
        .expect("applied");
    assert_eq!(
        applied, commits,
        "every replicated commit is in the checkpoint"
    );
    let mid_way = progress.windows(2).filter(|w| w[1] > w[0]).count();
    eprintln!("applied after each kill: {progress:?} of {commits} commits, {total} ops");
    assert!(
        mid_way >= 3,
        "kills should land while runs make progress: {progress:?}"
    );
}
