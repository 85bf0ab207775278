//! Trust with the real binary (DESIGN §11, issue 14): keys refused and admitted, read-only and
//! write-only peers, rules on dialled connections, protected mode and `--open`, and SIGHUP
//! re-reading the allow file under live connections. What the nodes hold is read back from
//! their stores and SQLite files and compared with the tweet ids of the sources, computed
//! independently (`tweets_oracle`); refusals are read from the processes' own output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::cli_support::{Proc, arg, tail};
use crate::common::committed::{sqlite_ops_applied, sqlite_tweet_ids, store_tweet_ids};
use crate::common::tweets_oracle::{Expected, shipped_source, source_tweets, write_lines};
use crate::common::wait::periodic_check;
use crate::common::{data_dir, free_port, run, run_ok, wait_exit, wait_port};

const T: Duration = Duration::from_secs(120);

fn lines_of(file: &str) -> Vec<Vec<u8>> {
    std::fs::read(data_dir().join(file))
        .expect("shipped tweets")
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn ids(lines: &[Vec<u8>]) -> BTreeSet<String> {
    source_tweets(lines).into_keys().collect()
}

/// `keygen --out NAME` in `cwd`: the public key.
fn keygen(cwd: &Path, name: &str) -> String {
    let out = run_ok(&["keygen", "--out", name], cwd);
    out.lines().last().expect("a key").to_string()
}

/// Collects `lines` into a new store `name` (no listener) and returns its directory.
fn collected(cwd: &Path, name: &str, lines: &[Vec<u8>]) -> PathBuf {
    let src = cwd.join(format!("{name}.jsonl"));
    write_lines(&src, lines);
    let store = cwd.join(name);
    run_ok(
        &["collect", "--store", arg(&store), "--source", arg(&src)],
        cwd,
    );
    store
}

/// `peer --store STORE --listen 127.0.0.1:PORT EXTRA…`, once it listens.
fn serve(cwd: &Path, store: &Path, extra: &[&str], log: &str) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["peer", "--store", arg(store), "--listen", &listen];
    args.extend_from_slice(extra);
    let peer = Proc::spawn(&args, cwd, log);
    wait_port(port, Duration::from_secs(60));
    (peer, port)
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/")
}

/// `analyze` (without --follow, --timeout 600) against `port`, run to its end, which must come
/// long before the timeout: a refusal ends it at once.
fn analyze(cwd: &Path, name: &str, port: u16, extra: &[&str]) -> Output {
    let (store, db) = (cwd.join(name), cwd.join(format!("{name}.sqlite")));
    let url = url(port);
    let mut args = vec![
        "analyze",
        "--store",
        arg(&store),
        "--connect",
        &url,
        "--sqlite",
        arg(&db),
        "--timeout",
        "600",
    ];
    args.extend_from_slice(extra);
    let log = format!("{name}.log");
    let mut p = Proc::spawn(&args, cwd, &log);
    let status = wait_exit(&mut p.child, T).unwrap_or_else(|| {
        panic!(
            "analyze {name} still runs after {T:?}; log:\n{}",
            tail(&cwd.join(&log))
        )
    });
    Output {
        status,
        stdout: Vec::new(),
        stderr: std::fs::read(cwd.join(&log)).unwrap_or_default(),
    }
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until the log `name` in `cwd` contains `needle`.
fn wait_log(cwd: &Path, name: &str, needle: &str) {
    let path = cwd.join(name);
    let found = periodic_check(
        || std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle)),
        T,
    );
    assert!(
        found,
        "{name} never said {needle:?}; it ends:\n{}",
        tail(&path)
    );
}

/// The public key of the node whose store is `store`.
fn id_of(cwd: &Path, store: &Path) -> String {
    let out = run_ok(&["id", "--store", arg(store)], cwd);
    out.lines().last().expect("a key").to_string()
}

#[test]
fn an_unknown_key_is_refused_on_both_sides_while_an_allowed_one_is_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = lines_of("flat.jsonl");
    let store = collected(d, "server", &lines);
    let allowed = keygen(d, "allowed.pem");
    let unknown = keygen(d, "unknown.pem");
    let (_peer, port) = serve(d, &store, &["--allow-read", &allowed], "server.log");

    let out = analyze(d, "stranger", port, &["--key", "unknown.pem"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("unknown peer key {unknown}")) && said.contains("--allow"),
        "the refused side says why and what to do:\n{said}"
    );
    wait_log(d, "server.log", &format!("unknown peer key {unknown}"));

    let out = analyze(d, "friend", port, &["--key", "allowed.pem"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sqlite_tweet_ids(&d.join("friend.sqlite")), ids(&lines));
}

#[test]
fn a_read_only_peer_receives_everything_and_its_pushes_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ours = lines_of("flat.jsonl");
    let theirs = [lines_of("brexit.jsonl"), lines_of("kpop.jsonl")].concat();
    let (ours_ids, theirs_ids) = (ids(&ours), ids(&theirs));
    assert!(ours_ids.is_disjoint(&theirs_ids) && !theirs_ids.is_empty());
    let server = collected(d, "server", &ours);
    let reader = collected(d, "reader", &theirs);
    let reader_key = keygen(d, "reader.pem");
    let follower = keygen(d, "follower.pem");
    let (mut s, sport) = serve(
        d,
        &server,
        &["--allow-read", &reader_key, "--allow", &follower],
        "server.log",
    );
    // A follower with both rights, to see what the server relays.
    let follow_url = url(sport);
    let fdb = d.join("follower.sqlite");
    let mut f = Proc::spawn(
        &[
            "analyze",
            "--store",
            arg(&d.join("follower")),
            "--connect",
            &follow_url,
            "--sqlite",
            arg(&fdb),
            "--follow",
            "--key",
            "follower.pem",
        ],
        d,
        "follower.log",
    );
    // The read-only peer dials the server, pushes its own commits (refused) and receives the
    // server's; it is restarted until its store, read while it is stopped, holds both sets.
    let surl = url(sport);
    let everything: BTreeSet<String> = ours_ids.union(&theirs_ids).cloned().collect();
    let mut attempt = 0;
    let got = periodic_check(
        || {
            attempt += 1;
            let log = format!("reader-{attempt}.log");
            let (mut r, _) = serve(
                d,
                &reader,
                &["--connect", &surl, "--key", "reader.pem"],
                &log,
            );
            wait_log(d, &log, "commits refused, nothing stored or relayed");
            r.terminate_ok("the read-only peer", &d.join(&log));
            store_tweet_ids(&reader)
                .into_keys()
                .collect::<BTreeSet<_>>()
                == everything
        },
        T,
    );
    assert!(
        got,
        "the read-only peer did not receive everything in {attempt} runs"
    );
    wait_log(d, "server.log", "lacks the write right");
    assert!(
        periodic_check(|| sqlite_tweet_ids(&fdb) == ours_ids, T),
        "the follower has the server's tweets"
    );
    f.terminate_ok("the follower", &d.join("follower.log"));
    s.terminate_ok("the server", &d.join("server.log"));
    // Nothing of the read-only peer was stored or relayed.
    assert_eq!(
        store_tweet_ids(&server)
            .into_keys()
            .collect::<BTreeSet<_>>(),
        ours_ids
    );
    assert_eq!(sqlite_tweet_ids(&fdb), ours_ids);
}

#[test]
fn an_analyzer_pulls_from_a_collector_it_lets_write_and_refuses_one_it_does_not_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = lines_of("flat.jsonl");
    let store = collected(d, "collector", &lines);
    let collector = id_of(d, &store);
    let analyzer = keygen(d, "analyzer.pem");
    let someone = keygen(d, "someone.pem");
    let (_c, port) = serve(d, &store, &["--allow-read", &analyzer], "collector.log");

    // Rules on the dialled connection: the collector is not listed, so it is refused.
    let out = analyze(
        d,
        "strict",
        port,
        &["--key", "analyzer.pem", "--allow-read", &someone],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("unknown peer key {collector}")),
        "{said}"
    );
    wait_log(d, "collector.log", &format!("unknown peer key {collector}"));
    assert_eq!(sqlite_ops_applied(&d.join("strict.sqlite")), 0);

    // `--allow-write COLLECTOR`: the analyzer stores what the collector sends.
    let out = analyze(
        d,
        "pull",
        port,
        &["--key", "analyzer.pem", "--allow-write", &collector],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sqlite_tweet_ids(&d.join("pull.sqlite")), ids(&lines));
}

#[test]
fn listening_beyond_loopback_needs_rules_or_open_and_open_lets_unknown_keys_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ours = lines_of("flat.jsonl");
    let store = collected(d, "server", &ours);
    let port = free_port();
    let anywhere = format!("0.0.0.0:{port}");
    let out = run(&["peer", "--store", arg(&store), "--listen", &anywhere], d);
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    for needle in [anywhere.as_str(), "--allow", "--allow-file", "--open"] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
    std::fs::write(d.join("bad-allow.txt"), "# ok\nnot-a-key read\n").expect("write");
    let out = run(
        &[
            "peer",
            "--store",
            arg(&store),
            "--listen",
            &anywhere,
            "--allow-file",
            "bad-allow.txt",
        ],
        d,
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("bad-allow.txt") && said.contains("line 2"),
        "{said}"
    );

    let mut s = Proc::spawn(
        &[
            "peer",
            "--store",
            arg(&store),
            "--listen",
            &anywhere,
            "--open",
        ],
        d,
        "server.log",
    );
    wait_port(port, Duration::from_secs(60));
    // An unknown key reads.
    let out = analyze(d, "reader", port, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(sqlite_tweet_ids(&d.join("reader.sqlite")), ids(&ours));
    // An unknown key's commits are refused.
    let theirs = lines_of("brexit.jsonl");
    let writer = collected(d, "writer", &theirs);
    let surl = url(port);
    let (mut w, _) = serve(d, &writer, &["--connect", &surl], "writer.log");
    wait_log(d, "writer.log", "lacks the write right");
    w.terminate_ok("the writer", &d.join("writer.log"));
    s.terminate_ok("the open server", &d.join("server.log"));
    assert_eq!(
        store_tweet_ids(&store).into_keys().collect::<BTreeSet<_>>(),
        ids(&ours)
    );
}

#[test]
fn sighup_admits_an_added_key_and_cuts_a_removed_one_off_a_live_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let all = shipped_source(&data_dir());
    let thirds = [&all[..40], &all[40..80], &all[80..]];
    let records = |upto: usize| Expected::of(&all[..[40, 80, all.len()][upto]], "x").records;
    let src = d.join("source.jsonl");
    write_lines(&src, thirds[0]);
    let a = keygen(d, "a.pem");
    let b = keygen(d, "b.pem");
    let allow = d.join("allow.txt");
    std::fs::write(&allow, format!("# who may read\n{a} read\n")).expect("write");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut s = Proc::spawn(
        &[
            "collect",
            "--store",
            arg(&d.join("server")),
            "--source",
            arg(&src),
            "--follow",
            "--flush-ms",
            "100",
            "--listen",
            &listen,
            "--allow-file",
            arg(&allow),
        ],
        d,
        "server.log",
    );
    wait_port(port, Duration::from_secs(60));
    let surl = url(port);
    let follower = |name: &str| {
        let db = d.join(format!("{name}.sqlite"));
        let p = Proc::spawn(
            &[
                "analyze",
                "--store",
                arg(&d.join(name)),
                "--connect",
                &surl,
                "--sqlite",
                arg(&db),
                "--follow",
                "--key",
                &format!("{name}.pem"),
            ],
            d,
            &format!("{name}.log"),
        );
        (p, db)
    };
    let reaches = |db: &Path, n: u64| periodic_check(|| sqlite_ops_applied(db) == n, T);
    let hup = |p: &Proc| {
        // SAFETY: plain kill(2) on a pid we own.
        unsafe {
            libc::kill(p.child.id() as i32, libc::SIGHUP);
        }
    };
    let (mut pa, adb) = follower("a");
    let (mut pb, bdb) = follower("b");
    assert!(reaches(&adb, records(0)), "a has the first third");
    wait_log(d, "b.log", &format!("unknown peer key {b}"));

    // Added: b is admitted on its next dial.
    std::fs::write(&allow, format!("{a} read\n{b} read\n")).expect("write");
    hup(&s);
    wait_log(d, "server.log", "re-read the allow file");
    assert!(reaches(&bdb, records(0)), "b is admitted and catches up");

    // Removed: b's live connection is closed, and it gets nothing new.
    std::fs::write(&allow, format!("{a} read\n")).expect("write");
    hup(&s);
    wait_log(d, "server.log", "the rules no longer admit the peer");
    crate::common::append_lines(
        &src,
        &thirds[1]
            .iter()
            .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
            .collect::<Vec<_>>(),
    );
    assert!(reaches(&adb, records(1)), "a has the second third");
    assert_eq!(
        sqlite_ops_applied(&bdb),
        records(0),
        "b got nothing after its removal"
    );

    // An invalid file keeps the rules in force.
    std::fs::write(&allow, format!("{a} read\n{b} sudo\n")).expect("write");
    hup(&s);
    wait_log(d, "server.log", "keeping the rules in force");
    crate::common::append_lines(
        &src,
        &thirds[2]
            .iter()
            .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
            .collect::<Vec<_>>(),
    );
    assert!(reaches(&adb, records(2)), "a still follows");
    assert_eq!(sqlite_ops_applied(&bdb), records(0), "b is still refused");
    let said = std::fs::read_to_string(d.join("server.log")).expect("log");
    assert!(
        said.contains("line 2"),
        "the reason names the line:\n{said}"
    );

    pa.terminate_ok("a", &d.join("a.log"));
    pb.terminate_ok("b", &d.join("b.log"));
    s.terminate_ok("the collector", &d.join("server.log"));
}

/// The ids realized in `db` so far, or `None` while the file or its table is not there yet
/// (read-only, so a running analyzer is not disturbed).
fn realized_so_far(db: &Path) -> Option<BTreeSet<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()?;
    let mut stmt = conn.prepare("SELECT id FROM tweets").ok()?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).ok()?;
    rows.collect::<Result<_, _>>().ok()
}

/// README's "Running across machines" keys-and-rules block, run as written with the binary
/// under test: both `keygen` lines, `id`, the collector (`--follow`, rules, on 0.0.0.0 with a
/// free port instead of 8080) serving the shipped tweets as `tweets.jsonl`, and the analysis
/// machine dialling it on 127.0.0.1 instead of collector.example.org, with the keys the
/// block printed in place of its placeholders. The analyzer realizes every tweet of the
/// source (oracle: the source's ids); a key the collector does not list is refused.
#[test]
fn the_readme_keys_and_rules_commands_work_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let mut commands: Vec<String> = Vec::new();
    let mut continued = false;
    for line in readme
        .lines()
        .skip_while(|l| *l != "## Running across machines")
        .skip_while(|l| *l != "```sh")
        .skip(1)
        .take_while(|l| *l != "```")
    {
        let code = line.split(" #").next().unwrap_or("").trim();
        if code.is_empty() || code.starts_with('#') {
            continue;
        }
        let (code, more) = match code.strip_suffix('\\') {
            Some(c) => (c.trim(), true),
            None => (code, false),
        };
        match commands.last_mut() {
            Some(last) if continued => {
                last.push(' ');
                last.push_str(code);
            }
            _ => commands.push(code.to_string()),
        }
        continued = more;
    }
    let words: Vec<Vec<String>> = commands
        .iter()
        .map(|c| c.split_whitespace().map(str::to_string).collect())
        .collect();
    assert!(words.iter().all(|w| w[0] == "replikativ"), "{commands:?}");
    let sub: Vec<&str> = words.iter().map(|w| w[1].as_str()).collect();
    assert_eq!(
        sub,
        ["keygen", "keygen", "id", "collect", "analyze"],
        "{commands:?}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let as_args = |w: &[String]| -> Vec<String> { w[1..].to_vec() };
    let run_words = |w: &[String]| -> String {
        let args = as_args(w);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok(&args, d)
    };
    let last_line = |out: String| out.lines().last().expect("a key").to_string();
    let collector_key = last_line(run_words(&words[0]));
    let analysis_key = last_line(run_words(&words[1]));
    assert_eq!(last_line(run_words(&words[2])), analysis_key, "id --key");
    assert!(analysis_key.starts_with("ed25519:") && collector_key != analysis_key);

    let lines = shipped_source(&data_dir());
    write_lines(&d.join("tweets.jsonl"), &lines);
    let expected: BTreeSet<String> = source_tweets(&lines).into_keys().collect();
    assert!(!expected.is_empty(), "the shipped source has tweets");
    let port = free_port();
    // Each placeholder must be where the test expects it, so that the block runs as written.
    let replace = |w: &[String], from: &str, to: &str| -> Vec<String> {
        assert!(w.iter().any(|x| x == from), "{from} not in {w:?}");
        w.iter()
            .map(|x| if x == from { to.to_string() } else { x.clone() })
            .collect()
    };
    let collect = replace(&words[3], "0.0.0.0:8080", &format!("0.0.0.0:{port}"));
    let collect = replace(&collect, "ed25519:ANALYSIS_KEY", &analysis_key);
    let collect_args = as_args(&collect);
    let collect_args: Vec<&str> = collect_args.iter().map(String::as_str).collect();
    let mut collector = Proc::spawn(&collect_args, d, "readme-collector.log");
    wait_port(port, T);
    let dial = replace(
        &words[4],
        "ws://collector.example.org:8080/",
        &format!("ws://127.0.0.1:{port}/"),
    );
    let dial = replace(&dial, "ed25519:COLLECTOR_KEY", &collector_key);
    let analyze_args = as_args(&dial);
    let analyze_args: Vec<&str> = analyze_args.iter().map(String::as_str).collect();
    let mut analysis = Proc::spawn(&analyze_args, d, "readme-analysis.log");
    let db = d.join("tweets.sqlite");
    assert!(
        periodic_check(|| realized_so_far(&db).as_ref() == Some(&expected), T),
        "the analysis machine did not realize the source's tweets; its log ends:\n{}\ncollector:\n{}",
        tail(&d.join("readme-analysis.log")),
        tail(&d.join("readme-collector.log"))
    );

    // "Nobody else gets in": a key the collector does not list is refused.
    let other = keygen(d, "other.pem");
    let out = analyze(d, "other", port, &["--key", "other.pem"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("unknown peer key {other}")),
        "{said}"
    );

    analysis.terminate_ok("the analysis machine", &d.join("readme-analysis.log"));
    collector.terminate_ok("the collector", &d.join("readme-collector.log"));
    assert_eq!(sqlite_tweet_ids(&db), expected);
    assert_eq!(
        store_tweet_ids(&d.join("analysis"))
            .into_keys()
            .collect::<BTreeSet<_>>(),
        expected
    );
}
