//! Several writers on one CDVCS (DESIGN §12, issue 12): concurrent commits are joined by a
//! deterministic merge, writers settle on one head, every tweet is committed once, a relay
//! never merges, `replikativ merge` does it for an operator, and a waiting realizer resumes
//! when the merge arrives. Oracles are the tweet ids of the source files, parsed with
//! serde_json independently of the crate's parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::append_lines;
use crate::common::cli_support::{Proc, tail};
use crate::common::tweets_oracle::{check_each_once, tweets_in};
use crate::common::wait::periodic_check;
use crate::common::{free_port, run, run_json, run_ok, wait_exit, wait_port};

const T: Duration = Duration::from_secs(60);

/// The distinct tweet ids of a JSON-lines file, by the independent oracle.
fn source_ids(path: &Path) -> BTreeSet<String> {
    let text = std::fs::read(path).expect("read source");
    text.split(|b| *b == b'\n')
        .flat_map(|line| tweets_in(line).unwrap_or_default())
        .filter_map(|t| t.get("id").and_then(|v| v.as_str()).map(str::to_string))
        .collect()
}

/// How many times each tweet id was committed into the default CDVCS of the store `dir`.
fn committed_ids(dir: &Path) -> BTreeMap<String, u64> {
    crate::common::committed::store_tweet_ids(dir)
}

/// Asserts the store holds exactly `expected`, each once.
fn assert_exactly_once(dir: &Path, expected: &BTreeSet<String>, what: &str) {
    if let Err(e) = check_each_once(expected, &committed_ids(dir)) {
        panic!("{what}: {e}");
    }
}

fn heads(cwd: &Path, store: &str) -> Vec<String> {
    let log = run_json(&["log", "--store", store], cwd);
    let heads = log["heads"].as_array().expect("heads");
    heads
        .iter()
        .map(|h| h.as_str().expect("hex").to_string())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// Waits until `log` (a file in `cwd`) contains `needle`.
fn wait_log(cwd: &Path, log: &str, needle: &str) {
    let path = cwd.join(log);
    assert!(
        periodic_check(
            || std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle)),
            T
        ),
        "{log} never said {needle:?}:\n{}",
        tail(&path)
    );
}

/// The reproduction up to the point where store `A` has two heads: the demo's store
/// and a store `M` holding one concurrent commit, replicated through two `peer` relays.
/// Returns the paths of the sources used.
fn two_heads(cwd: &Path) -> (PathBuf, PathBuf) {
    run_ok(&["demo", "--dir", "d"], cwd);
    copy_dir(&cwd.join("d/collector-store"), &cwd.join("A"));
    let other = cwd.join("other.jsonl");
    std::fs::write(
        &other,
        "{\"id\":\"666\",\"text\":\"from another writer\",\"author\":{\"id\":\"1\",\"username\":\"w2\"}}\n",
    )
    .expect("write other");
    run_ok(
        &[
            "collect",
            "--store",
            "M",
            "--source",
            "other.jsonl",
            "--flush-ms",
            "10",
        ],
        cwd,
    );
    let (pa, pm) = (free_port(), free_port());
    let (la, lm) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pm}"));
    let mut a = Proc::spawn(
        &["peer", "--store", "A", "--listen", &la],
        cwd,
        "peer-a.log",
    );
    wait_port(pa, T);
    let url = format!("ws://{la}/");
    let mut m = Proc::spawn(
        &["peer", "--store", "M", "--listen", &lm, "--connect", &url],
        cwd,
        "peer-m.log",
    );
    // A relay stores the concurrent commit and never merges: A now has two heads.
    wait_log(cwd, "peer-a.log", "has 2 heads");
    m.terminate_ok("peer M", &cwd.join("peer-m.log"));
    a.terminate_ok("peer A", &cwd.join("peer-a.log"));
    assert_eq!(heads(cwd, "A").len(), 2, "a relay never merges");
    (cwd.join("d/sample-tweets.jsonl"), other)
}

#[test]
fn a_second_writer_no_longer_halts_the_collector_and_merge_joins_a_stopped_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let (sample, other) = two_heads(cwd);
    let two = heads(cwd, "A");

    // An operator's merge on a copy: deterministic, idempotent, refused while in use.
    copy_dir(&cwd.join("A"), &cwd.join("B"));
    let merged = run_json(&["merge", "--store", "B"], cwd);
    assert_eq!(merged["merged"], true, "{merged}");
    let commit = merged["commit"].as_str().expect("commit").to_string();
    assert_eq!(merged["heads"], serde_json::json!([commit]));
    assert_eq!(heads(cwd, "B"), vec![commit.clone()]);
    let again = run_json(&["merge", "--store", "B"], cwd);
    assert_eq!(
        again,
        serde_json::json!({"merged": false, "heads": [commit]})
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let peer = Proc::spawn(
        &["peer", "--store", "B", "--listen", &listen],
        cwd,
        "peer-b.log",
    );
    wait_port(port, T);
    let busy = run(&["merge", "--store", "B", "--json"], cwd);
    assert_eq!(busy.status.code(), Some(1), "merge on a store in use");
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    drop(peer);

    // The collector on the two-headed store joins them and commits on top.
    let sample_text = std::fs::read_to_string(&sample).expect("sample");
    let more: String = sample_text
        .lines()
        .take(3)
        .map(|l| {
            // New ids (the sample writes `"id": "…"`; the sed missed them, so its
            // tweets were repeats, which the index now leaves out).
            let l = l.replace("\"id\": \"1", "\"id\": \"9");
            format!("{}\n", l.replace("\"id\":\"1", "\"id\":\"9"))
        })
        .collect();
    std::fs::write(cwd.join("more.jsonl"), &more).expect("write more");
    let out = run_ok(
        &[
            "collect",
            "--store",
            "A",
            "--source",
            "more.jsonl",
            "--flush-ms",
            "10",
        ],
        cwd,
    );
    assert!(out.contains("collected"), "{out}");
    let after = heads(cwd, "A");
    assert_eq!(after.len(), 1, "the writer joined the heads: {after:?}");
    let expected: BTreeSet<String> = [&sample, &other, &cwd.join("more.jsonl")]
        .iter()
        .flat_map(|p| source_ids(p))
        .collect();
    assert!(expected.len() > 518, "more.jsonl adds new ids");
    assert_exactly_once(&cwd.join("A"), &expected, "store A");
    // The collector's join of the same two heads is the operator's merge, bit for bit.
    let log = run_ok(&["log", "--store", "A"], cwd);
    assert_ne!(two, after);
    let a = replikativ::store::Store::open(&cwd.join("A")).expect("open A");
    let merge_id: replikativ::Id = commit.parse().expect("id");
    assert!(
        a.has_value(&merge_id).expect("read"),
        "A holds the same deterministic merge as B:\n{log}"
    );
}

#[test]
fn analyze_waits_on_two_heads_exits_1_when_interrupted_and_finishes_once_a_merge_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let (sample, other) = two_heads(cwd);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("ws://{listen}/");
    let mut peer = Proc::spawn(
        &["peer", "--store", "A", "--listen", &listen],
        cwd,
        "relay.log",
    );
    wait_port(port, T);
    let analyze = [
        "analyze",
        "--store",
        "X",
        "--connect",
        &url,
        "--sqlite",
        "x.sqlite",
    ];

    // Interrupted while waiting for a merge: exit 1, saying so.
    let mut first = Proc::spawn(&analyze, cwd, "analyze-1.log");
    wait_log(cwd, "analyze-1.log", "waiting for a writer to merge");
    crate::common::terminate(&first.child);
    let status = wait_exit(&mut first.child, T).expect("analyze exits on SIGTERM");
    assert_eq!(
        status.code(),
        Some(1),
        "{}",
        tail(&cwd.join("analyze-1.log"))
    );
    assert!(tail(&cwd.join("analyze-1.log")).contains("interrupted before catching up"));

    // Waiting again; the operator stops the relay, merges, restarts it: analyze resumes by
    // itself (redial, the merge replicates, the Wait realizer applies both branches once).
    let mut second = Proc::spawn(&analyze, cwd, "analyze-2.log");
    wait_log(cwd, "analyze-2.log", "waiting for a writer to merge");
    peer.terminate_ok("relay", &cwd.join("relay.log"));
    let merged = run_json(&["merge", "--store", "A"], cwd);
    assert_eq!(merged["merged"], true, "{merged}");
    let _peer = Proc::spawn(
        &["peer", "--store", "A", "--listen", &listen],
        cwd,
        "relay.log",
    );
    let status = wait_exit(&mut second.child, T).expect("analyze finishes after the merge");
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        tail(&cwd.join("analyze-2.log"))
    );
    let expected: BTreeSet<String> = [&sample, &other]
        .iter()
        .flat_map(|p| source_ids(p))
        .collect();
    let count = run_json(&["query", "--sqlite", "x.sqlite", "count"], cwd);
    assert_eq!(count["count"], expected.len() as u64);
    let stats = run_json(&["query", "--sqlite", "x.sqlite", "stats"], cwd);
    assert_eq!(
        stats["ops_applied"],
        expected.len() as u64,
        "each tweet once: {stats}"
    );
}

/// JSON lines of the shipped files named, in order.
fn shipped_lines(files: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(crate::common::data_dir().join(f)).expect("data");
        out.extend(text.lines().map(|l| format!("{l}\n")));
    }
    out
}

#[test]
fn two_connected_collectors_write_one_cdvcs_concurrently_and_settle_on_the_union_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let one = shipped_lines(&["brexit.jsonl", "kpop.jsonl", "geo_tweets.jsonl"]);
    let two = shipped_lines(&["flat.jsonl", "withheld.jsonl", "entities_test.jsonl"]);
    let (f1, f2) = (cwd.join("one.jsonl"), cwd.join("two.jsonl"));
    let rounds = 6;
    let (c1, c2) = (one.len().div_ceil(rounds), two.len().div_ceil(rounds));
    let (mut chunks1, mut chunks2) = (one.chunks(c1), two.chunks(c2));
    append_lines(&f1, chunks1.next().expect("chunk"));
    append_lines(&f2, chunks2.next().expect("chunk"));
    let (p1, p2) = (free_port(), free_port());
    let (l1, l2) = (format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}"));
    let u1 = format!("ws://{l1}/");
    let common_args = ["--follow", "--flush-ms", "50", "--batch", "7"];
    let mut args1 = vec![
        "collect",
        "--store",
        "S1",
        "--source",
        "one.jsonl",
        "--listen",
        &l1,
    ];
    args1.extend(common_args);
    let mut first = Proc::spawn(&args1, cwd, "c1.log");
    wait_port(p1, T);
    let mut args2 = vec![
        "collect",
        "--store",
        "S2",
        "--source",
        "two.jsonl",
        "--listen",
        &l2,
        "--connect",
        &u1,
    ];
    args2.extend(common_args);
    let mut second = Proc::spawn(&args2, cwd, "c2.log");
    wait_port(p2, T);
    let u2 = format!("ws://{l2}/");
    // One analyzer behind each writer: each realizes everything only once its writer holds
    // every commit of both, joined into one head.
    let analyzers = [("X1", &u1, "x1.sqlite"), ("X2", &u2, "x2.sqlite")].map(|(store, url, db)| {
        Proc::spawn(
            &[
                "analyze",
                "--store",
                store,
                "--connect",
                url,
                "--sqlite",
                db,
                "--follow",
            ],
            cwd,
            &format!("{store}.log"),
        )
    });
    // Both files grow while both collectors commit into the same CDVCS.
    crate::common::grow_together((&f1, chunks1), (&f2, chunks2));
    let expected: BTreeSet<String> = source_ids(&f1).union(&source_ids(&f2)).cloned().collect();
    assert!(
        source_ids(&f1).is_disjoint(&source_ids(&f2)),
        "the two sources must not share ids"
    );
    // An analyzer (Wait policy) realizes everything only once its writer has joined heads
    // into one that covers both sources.
    let count = |db: &str| {
        let out = run(&["query", "--sqlite", db, "count", "--json"], cwd);
        let last = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(str::to_string);
        last.and_then(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
            .and_then(|v| v["count"].as_u64())
    };
    let all = Some(expected.len() as u64);
    let counted = periodic_check(
        || count("x1.sqlite") == all && count("x2.sqlite") == all,
        Duration::from_secs(120),
    );
    assert!(
        counted,
        "the analyzers realized {:?} and {:?} of {} tweets; logs:\n{}\n{}\n{}",
        count("x1.sqlite"),
        count("x2.sqlite"),
        expected.len(),
        tail(&cwd.join("c1.log")),
        tail(&cwd.join("c2.log")),
        tail(&cwd.join("X2.log"))
    );
    drop(analyzers);
    second.terminate_ok("collector 2", &cwd.join("c2.log"));
    first.terminate_ok("collector 1", &cwd.join("c1.log"));
    for store in ["S1", "S2"] {
        assert_eq!(heads(cwd, store).len(), 1, "{store} ends with one head");
        assert_exactly_once(&cwd.join(store), &expected, store);
    }
    for db in ["x1.sqlite", "x2.sqlite"] {
        let stats = run_json(&["query", "--sqlite", db, "stats"], cwd);
        assert_eq!(
            stats["ops_applied"],
            expected.len() as u64,
            "{db}: every tweet realized once: {stats}"
        );
    }
}

#[test]
fn collect_follow_stopped_with_sigterm_again_and_again_commits_every_tweet_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    let lines = shipped_lines(&["brexit.jsonl", "flat.jsonl", "kpop.jsonl", "withheld.jsonl"]);
    let src = cwd.join("source.jsonl");
    // One chunk of lines per stop (long mode asks for more stops than there are lines: then
    // every line is its own chunk).
    let stops = crate::common::iterations(20, 10).min(lines.len() - 1);
    let parts = stops + 1;
    let bounds = |i: usize| i * lines.len() / parts;
    let mut chunks = (0..parts).map(|i| &lines[bounds(i)..bounds(i + 1)]);
    append_lines(&src, chunks.next().expect("chunk"));
    let args = [
        "collect",
        "--store",
        "S",
        "--source",
        "source.jsonl",
        "--batch",
        "3",
        "--flush-ms",
        "50",
        "--follow",
    ];
    let total = source_ids(&src).len();
    let mut mid_way = 0;
    let mut before = 0;
    for round in 0..stops {
        let log = format!("collect-{round}.log");
        let mut p = Proc::spawn(&args, cwd, &log);
        // Once it reads, the file grows by a chunk; SIGTERM follows as soon as the collector
        // has committed part of it, so the stop lands while it is working.
        wait_log(cwd, &log, "reading source");
        if let Some(next) = chunks.next() {
            append_lines(&src, next);
        }
        wait_log(cwd, &log, "INFO committed");
        p.terminate_ok(
            &format!("collect --follow (round {round})"),
            &cwd.join(&log),
        );
        let now = committed_ids(&cwd.join("S"));
        assert!(
            now.values().all(|n| *n == 1),
            "a tweet committed twice in round {round}"
        );
        // Working when stopped: what it had read but not yet committed was committed after
        // the signal (the graceful stop's own commit).
        let text = std::fs::read_to_string(cwd.join(&log)).unwrap_or_default();
        if text
            .split_once("signal received")
            .is_some_and(|(_, after)| after.contains("INFO committed"))
        {
            mid_way += 1;
        }
        assert!(now.len() > before, "round {round} committed nothing");
        before = now.len();
    }
    for rest in chunks {
        append_lines(&src, rest);
    }
    run_ok(&args[..args.len() - 1], cwd);
    let expected = source_ids(&src);
    assert!(expected.len() > total);
    assert_exactly_once(&cwd.join("S"), &expected, "after the SIGTERM loop");
    eprintln!("{mid_way} of {stops} SIGTERMs landed while read tweets were uncommitted");
    assert!(
        mid_way >= 2,
        "stops should land mid-way: {mid_way} of {stops}"
    );
}

/// A stale source reader delivering a chunk that its successor delivers again (the race
/// behind "tweets committed twice after a restart"): the collector commits each tweet once.
#[test]
fn a_chunk_fed_twice_is_committed_once_and_counted_as_repeats() {
    use replikativ::collector::actor::{Feed, FeedItem};
    use replikativ::collector::{CollectOptions, CollectReport, CollectorActor, CollectorLink};
    use replikativ::node::StoreLocation;

    actix_rt::System::new().block_on(async {
        let key = replikativ::crdt::CrdtKey::new("w", uuid::Uuid::new_v4());
        let node = replikativ::Node::builder()
            .store(StoreLocation::Memory)
            .cdvcs(key.clone())
            .start()
            .await
            .expect("node");
        let (report_tx, report) = tokio::sync::watch::channel(CollectReport::default());
        let opts = CollectOptions {
            key: key.clone(),
            flush: Duration::from_secs(3600),
            batch: 4,
            checkpoint_key: None,
        };
        let collector = actix::Actor::start(CollectorActor::new(
            node.stage(),
            opts,
            CollectorLink::default(),
            report_tx,
        ));
        let chunk = || {
            (0..10)
                .map(|i| FeedItem::Tweet {
                    id: format!("t{i}"),
                    params: rmp_serde::to_vec(&serde_json::json!({"id": format!("t{i}")}))
                        .expect("encode"),
                    after: None,
                })
                .collect::<Vec<_>>()
        };
        collector
            .send(Feed(chunk()))
            .await
            .expect("mailbox")
            .expect("first");
        collector
            .send(Feed(chunk()))
            .await
            .expect("mailbox")
            .expect("again");
        collector
            .send(replikativ::collector::FlushNow)
            .await
            .expect("mailbox")
            .expect("flush");
        let r = report.borrow().clone();
        assert_eq!((r.tweets, r.repeats, r.buffered), (10, 10, 0), "{r:?}");
        let head = node.stage().heads(&key).await.expect("heads");
        let history = node.stage().history(&key, &head[0]).await.expect("history");
        assert_eq!(
            history.len(),
            1 + 10usize.div_ceil(4),
            "root and three commits"
        );
        node.shutdown().await;
    });
}

/// A collector that cannot commit must not look healthy (issue 12): with every write that
/// grows the store refused (RLIMIT_FSIZE, SIGXFSZ ignored: what a full disk does to redb),
/// `collect --source -` keeps failing to commit; SIGTERM then exits 1 saying how many tweets
/// were not committed and why, instead of 0 with its buffer dropped.
#[test]
fn a_collector_that_cannot_commit_exits_1_on_sigterm_saying_how_many_tweets_and_why() {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    std::fs::write(
        cwd.join("one.jsonl"),
        shipped_lines(&["geo_tweets.jsonl"]).concat(),
    )
    .expect("write");
    run_ok(&["collect", "--store", "S", "--source", "one.jsonl"], cwd);
    let limit = std::fs::metadata(cwd.join("S/store.redb"))
        .expect("store")
        .len();
    let log = std::fs::File::create(cwd.join("full.log")).expect("log");
    let mut cmd = Command::new(crate::common::bin());
    cmd.args([
        "collect",
        "--store",
        "S",
        "--source",
        "-",
        "--flush-ms",
        "20",
        "--batch",
        "50",
    ])
    .current_dir(cwd)
    .stdin(Stdio::piped())
    .stdout(log.try_clone().expect("log"))
    .stderr(log);
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut p = Proc {
        child: cmd.spawn().expect("spawn collect"),
    };
    let lines = shipped_lines(&["entities_test.jsonl", "withheld.jsonl", "2sets.jsonl"]);
    let mut stdin = p.child.stdin.take().expect("stdin");
    stdin
        .write_all(lines.concat().as_bytes())
        .expect("feed stdin");
    stdin.flush().expect("flush stdin");
    wait_log(cwd, "full.log", "failed");
    crate::common::terminate(&p.child);
    let status = wait_exit(&mut p.child, T).expect("collect exits on SIGTERM");
    let text = tail(&cwd.join("full.log"));
    eprintln!("{}", text.lines().last().unwrap_or_default());
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(text.contains("tweets were not committed"), "{text}");
    assert!(text.contains("cannot be read again"), "{text}");
    drop(stdin);
}

mod in_process {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use replikativ::crdt::{Commit, CrdtKey};
    use replikativ::node::StoreLocation;
    use replikativ::stage::WritePolicy;
    use replikativ::store::WriteBatch;
    use replikativ::{Id, Node};

    use crate::common::nodes::{heads, url};
    use crate::common::stage_support::note;
    use crate::common::wait::wait_until;

    const T: Duration = Duration::from_secs(30);

    async fn node(name: &str, key: &CrdtKey, connect: Option<String>) -> Node {
        let mut b = Node::builder()
            .name(name)
            .store(StoreLocation::Memory)
            .listen("127.0.0.1:0")
            .cdvcs(key.clone());
        if let Some(u) = connect {
            b = b.connect(u);
        }
        b.start().await.expect("start node")
    }

    /// How many times each note (op params) occurs in the history of `node`'s single head.
    async fn notes(node: &Node, key: &CrdtKey) -> BTreeMap<Vec<u8>, usize> {
        let stage = node.stage();
        let head = stage.heads(key).await.expect("heads");
        assert_eq!(head.len(), 1, "one head");
        let held = node.store().clone();
        let store = |id: &Id| {
            held.get_value(id)
                .expect("read")
                .expect("a value the history references")
        };
        let mut out = BTreeMap::new();
        for id in stage.history(key, &head[0]).await.expect("history") {
            let bytes = store(&id);
            let commit = Commit::decode(&bytes).expect("commit").commit;
            if commit.parents.is_empty() {
                continue;
            }
            for tx in commit.transactions {
                *out.entry(store(&tx.params)).or_insert(0) += 1;
            }
        }
        out
    }

    #[test]
    fn two_replicas_that_join_the_same_heads_concurrently_make_the_same_commit() {
        actix_rt::System::new().block_on(async {
            let key = CrdtKey::new("w", uuid::Uuid::new_v4());
            let a = node("a", &key, None).await;
            let b = node("b", &key, None).await;
            a.stage()
                .transact(&key, vec![note("a1")])
                .await
                .expect("a1");
            b.stage()
                .transact(&key, vec![note("b1")])
                .await
                .expect("b1");
            b.stage().connect(&url(&a)).await.expect("connect");
            wait_until(
                "both replicas to hold both heads",
                T,
                || heads(&a, &key).len() == 2 && heads(&a, &key) == heads(&b, &key),
                || format!("{:?} / {:?}", heads(&a, &key), heads(&b, &key)),
            )
            .await;
            let (sa, sb) = (a.stage(), b.stage());
            let (ja, jb) = futures_util::join!(sa.join_heads(&key), sb.join_heads(&key));
            let (ja, jb) = (ja.expect("join a"), jb.expect("join b"));
            assert!(ja.is_some());
            assert_eq!(ja, jb, "the same merge on both replicas");
            let one: std::collections::BTreeSet<Id> = ja.into_iter().collect();
            wait_until(
                "both replicas to settle on the merge",
                T,
                || heads(&a, &key) == one && heads(&b, &key) == one,
                || format!("{:?} / {:?}", heads(&a, &key), heads(&b, &key)),
            )
            .await;
            a.shutdown().await;
            b.shutdown().await;
        });
    }

    #[test]
    fn writers_under_merge_first_settle_on_one_head_with_every_write_once() {
        actix_rt::System::new().block_on(async {
            let key = CrdtKey::new("w", uuid::Uuid::new_v4());
            let a = node("a", &key, None).await;
            let b = node("b", &key, Some(url(&a))).await;
            let n = 30;
            let write = |node: &Node, tag: &'static str| {
                let stage = node.stage();
                let key = key.clone();
                async move {
                    for i in 0..n {
                        let txs = vec![note(&format!("{tag}{i}"))];
                        stage
                            .transact_with(&key, txs, WriteBatch::new(), WritePolicy::MergeFirst)
                            .await
                            .expect("a writer never fails on concurrent heads");
                    }
                }
            };
            futures_util::join!(write(&a, "a"), write(&b, "b"));
            // Writers join on their flush tick; here each joins until both hold one equal head.
            wait_until(
                "the writers to settle on one head",
                T,
                || {
                    let (ha, hb) = (heads(&a, &key), heads(&b, &key));
                    if ha.len() > 1 {
                        let s = a.stage();
                        let k = key.clone();
                        actix_rt::spawn(async move { s.join_heads(&k).await.map(drop) });
                    }
                    if hb.len() > 1 {
                        let s = b.stage();
                        let k = key.clone();
                        actix_rt::spawn(async move { s.join_heads(&k).await.map(drop) });
                    }
                    ha.len() == 1 && ha == hb
                },
                || format!("{:?} / {:?}", heads(&a, &key), heads(&b, &key)),
            )
            .await;
            for node in [&a, &b] {
                let got = notes(node, &key).await;
                assert_eq!(got.len(), 2 * n, "every write is in the history");
                assert!(got.values().all(|c| *c == 1), "each write once");
            }
            a.shutdown().await;
            b.shutdown().await;
        });
    }
}

#[test]
fn collect_connect_takes_only_websocket_urls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwd = dir.path();
    std::fs::write(cwd.join("one.jsonl"), "{\"id\":\"1\",\"text\":\"x\"}\n").expect("write");
    let out = run(
        &[
            "collect",
            "--store",
            "S",
            "--source",
            "one.jsonl",
            "--connect",
            "notaurl",
        ],
        cwd,
    );
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--connect notaurl is not a ws:// URL"),
        "{stderr}"
    );
    assert!(
        !cwd.join("S").exists(),
        "nothing created for a refused command"
    );
}
