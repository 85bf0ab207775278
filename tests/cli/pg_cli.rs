//! `analyze --postgres`, `query --postgres` and `realize-skip --postgres` with the real binary
//! against a throwaway server (`common::postgres`): SIGKILLed at random moments, the server
//! itself crashed (`pg_ctl stop -m immediate`) and restarted mid-stream, two analyzers sharing
//! one database. Exactly once is proven by the non-idempotent per-account op counters against
//! the source's tweets per author, and the tweet ids against the source's, never by a count
//! idempotent inserts would also get right. The password reaches the processes through a
//! password file named in the URL (`passfile=`), never on the command line.
//! Skipped loudly without the server binaries (a failure under `CI`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli_kill::kill_until_done;
use crate::common::cli_support::{Proc, arg, tail};
use crate::common::postgres::{PASSWORD, PgCluster};
use crate::common::tweets_oracle::{
    check_each_once, per_author, shipped_source, source_tweets, write_lines,
};
use crate::common::wait::periodic_check;
use crate::common::{data_dir, free_port, iterations, run_json, run_ok, wait_port};

/// A database of the cluster, with the URL the binary gets.
struct Db<'a> {
    pg: &'a PgCluster,
    name: String,
    url: String,
}

impl<'a> Db<'a> {
    fn create(pg: &'a PgCluster, dir: &Path, name: &str) -> Db<'a> {
        pg.createdb(name);
        let pgpass = dir.join("pgpass");
        if !pgpass.exists() {
            std::fs::write(&pgpass, format!("*:*:*:postgres:{PASSWORD}\n")).expect("pgpass");
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600))
                .expect("chmod");
        }
        let url = format!("{}?passfile={}", pg.url("postgres", name), pgpass.display());
        Db {
            pg,
            name: name.to_string(),
            url,
        }
    }

    fn has_sink(&self) -> bool {
        self.pg.psql(
            &self.name,
            "SELECT to_regclass('replikativ.account_ops') IS NOT NULL",
        ) == "t"
    }

    /// `ops_applied` (0 before the sink exists).
    fn ops_applied(&self) -> u64 {
        if !self.has_sink() {
            return 0;
        }
        let v = self.pg.psql(
            &self.name,
            "SELECT COALESCE((SELECT value FROM replikativ.counters WHERE name = 'ops_applied'), 0)",
        );
        v.parse().expect("a number")
    }

    /// The non-idempotent witness: ops applied per account.
    fn account_ops(&self) -> BTreeMap<String, u64> {
        self.rows("SELECT author_id || '=' || ops FROM replikativ.account_ops")
    }

    /// Each stored tweet id with the number of rows holding it.
    fn tweet_ids(&self) -> BTreeMap<String, u64> {
        self.rows("SELECT id || '=' || count(*) FROM replikativ.tweets GROUP BY id")
    }

    fn rows(&self, sql: &str) -> BTreeMap<String, u64> {
        self.pg
            .psql(&self.name, sql)
            .lines()
            .map(|l| {
                let (k, n) = l.rsplit_once('=').expect("key=n");
                (k.to_string(), n.parse().expect("count"))
            })
            .collect()
    }

    /// Every witness of exactly once against the source.
    fn check_exactly_once(&self, source: &BTreeMap<String, String>, when: &str) {
        if let Err(e) = check_each_once(source.keys(), &self.tweet_ids()) {
            panic!("{when}: the Postgres tweets: {e}");
        }
        assert_eq!(
            self.account_ops(),
            per_author(source),
            "{when}: per-account op counts differ from the source's tweets per author"
        );
        assert_eq!(
            self.ops_applied(),
            source.len() as u64,
            "{when}: ops_applied"
        );
    }
}

/// The shipped tweets collected in commits of 3 into `store`, and served by a peer.
fn served_source(d: &Path) -> (BTreeMap<String, String>, Proc, String, PathBuf) {
    let lines = shipped_source(&data_dir());
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let store = d.join("collector");
    run_ok(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            arg(&src),
            "--batch",
            "3",
            "--flush-ms",
            "20",
        ],
        d,
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let peer = Proc::spawn(
        &["peer", "--store", arg(&store), "--listen", &listen],
        d,
        "peer.log",
    );
    wait_port(port, Duration::from_secs(30));
    (
        source_tweets(&lines),
        peer,
        format!("ws://127.0.0.1:{port}/"),
        store,
    )
}

#[test]
fn analyze_postgres_killed_at_random_moments_applies_every_record_exactly_once() {
    let Some(pg) = PgCluster::start("analyze_postgres_killed_at_random_moments") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (source, _peer, url, _) = served_source(d);
    let target = iterations(30, 20).max(20);
    let (mut kills, mut mid_work, mut round) = (0, 0, 0);
    while mid_work < target {
        round += 1;
        let db = Db::create(&pg, d, &format!("round{round}"));
        let analysis = d.join(format!("analysis-{round}"));
        let args = [
            "analyze",
            "--store",
            arg(&analysis),
            "--connect",
            &url,
            "--postgres",
            &db.url,
            "--timeout",
            "30",
        ];
        let k = kill_until_done(
            &args,
            d,
            &format!("analyze-{round}.log"),
            0..900,
            "analyze",
            || db.ops_applied(),
            source.len() as u64,
        );
        kills += k.all;
        mid_work += k.mid_work;
        db.check_exactly_once(
            &source,
            &format!(
                "round {round} after {} kills ({} mid-work)",
                k.all, k.mid_work
            ),
        );
    }
    eprintln!("analyze --postgres: {mid_work} of {kills} kills mid-work over {round} rounds");
}

#[test]
fn a_postgres_crash_and_restart_mid_stream_loses_and_doubles_nothing() {
    let Some(pg) = PgCluster::start("a_postgres_crash_and_restart_mid_stream") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let source = source_tweets(&lines);
    let src = d.join("growing.jsonl");
    let (first, rest) = lines.split_at(lines.len() / 4);
    write_lines(&src, first);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let store = d.join("collector");
    let mut collect = Proc::spawn(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            arg(&src),
            "--follow",
            "--listen",
            &listen,
            "--batch",
            "5",
            "--flush-ms",
            "20",
        ],
        d,
        "collect.log",
    );
    wait_port(port, Duration::from_secs(30));
    let db = Db::create(&pg, d, "live");
    let analysis = d.join("analysis");
    let url = format!("ws://127.0.0.1:{port}/");
    let mut analyze = Proc::spawn(
        &[
            "analyze",
            "--store",
            arg(&analysis),
            "--connect",
            &url,
            "--postgres",
            &db.url,
            "--follow",
        ],
        d,
        "analyze.log",
    );
    // The source grows by a few lines at a time, as a live stream does.
    let appended = |part: &[Vec<u8>]| {
        use std::io::Write as _;
        for chunk in part.chunks(3) {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&src)
                .expect("source");
            f.write_all(
                &chunk
                    .iter()
                    .flat_map(|l| [&l[..], b"\n"].concat())
                    .collect::<Vec<u8>>(),
            )
            .expect("append");
            std::thread::sleep(Duration::from_millis(15));
        }
    };
    let (during, after) = rest.split_at(rest.len() / 2);
    assert!(
        periodic_check(
            || db.has_sink() && db.ops_applied() > 0,
            Duration::from_secs(60)
        ),
        "analyze realized nothing; log:\n{}",
        tail(&d.join("analyze.log"))
    );
    let before_crash = db.ops_applied();
    pg.stop_immediate();
    // Tweets keep arriving while the server is down; the realizer backs off.
    appended(during);
    pg.start_server();
    appended(after);
    let total = source.len() as u64;
    assert!(
        before_crash < total,
        "the crash must land mid-stream ({before_crash} of {total} applied before it)"
    );
    assert!(
        periodic_check(|| db.ops_applied() >= total, Duration::from_secs(120)),
        "not everything realized after the restart ({} of {total}); log:\n{}",
        db.ops_applied(),
        tail(&d.join("analyze.log"))
    );
    analyze.terminate_ok("analyze --follow --postgres", &d.join("analyze.log"));
    // The realizer met the dead server and was restarted (with backoff) until it came back.
    let log =
        String::from_utf8_lossy(&std::fs::read(d.join("analyze.log")).expect("log")).into_owned();
    assert!(
        log.contains("realizer failed"),
        "no failed realizer in the log:\n{}",
        tail(&d.join("analyze.log"))
    );
    collect.terminate_ok("collect --follow", &d.join("collect.log"));
    db.check_exactly_once(&source, "after a server crash and restart");
    eprintln!("server crashed after {before_crash} of {total} ops; all applied once after restart");
}

#[test]
fn two_analyzers_share_one_database_and_query_answers_as_sqlite_does() {
    let Some(pg) = PgCluster::start("two_analyzers_share_one_database") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (source, _peer, url, _) = served_source(d);
    let db = Db::create(&pg, d, "shared");
    let mut both: Vec<Proc> = (0..2)
        .map(|i| {
            let store = d.join(format!("analysis-{i}"));
            Proc::spawn(
                &[
                    "analyze",
                    "--store",
                    arg(&store),
                    "--connect",
                    &url,
                    "--postgres",
                    &db.url,
                ],
                d,
                &format!("analyze-{i}.log"),
            )
        })
        .collect();
    for (i, p) in both.iter_mut().enumerate() {
        let log = d.join(format!("analyze-{i}.log"));
        let status = crate::common::wait_exit(&mut p.child, Duration::from_secs(180))
            .unwrap_or_else(|| panic!("analyzer {i} did not finish; log:\n{}", tail(&log)));
        assert_eq!(status.code(), Some(0), "analyzer {i}; log:\n{}", tail(&log));
    }
    db.check_exactly_once(&source, "two analyzers sharing a database");

    // The same CDVCS realized into SQLite answers every query alike.
    let sqlite = d.join("a.sqlite");
    run_ok(
        &[
            "analyze",
            "--store",
            arg(&d.join("analysis-lite")),
            "--connect",
            &url,
            "--sqlite",
            arg(&sqlite),
        ],
        d,
    );
    for q in [
        &["count"][..],
        &["search", "obama"],
        &["search", "#Brexit", "--limit", "3"],
        &["top", "5"],
        &["stats"],
    ] {
        let mut lite = vec!["query", "--sqlite", arg(&sqlite)];
        lite.extend_from_slice(q);
        let mut post = vec!["query", "--postgres", &db.url];
        post.extend_from_slice(q);
        assert_eq!(run_json(&lite, d), run_json(&post, d), "query {q:?}");
    }
    // An operator skip is recorded and not counted as an applied commit.
    let stats = run_json(&["query", "stats", "--postgres", &db.url], d);
    let id = "ab".repeat(32);
    let out = run_ok(
        &[
            "realize-skip",
            "--postgres",
            &db.url,
            "--commit",
            &id,
            "--reason",
            "test",
        ],
        d,
    );
    assert!(out.contains(&id) && !out.contains(PASSWORD), "{out}");
    assert_eq!(
        run_json(&["query", "stats", "--postgres", &db.url], d),
        stats
    );
    assert_eq!(
        pg.psql("shared", "SELECT reason FROM replikativ.skipped"),
        "test"
    );
}
