//! SIGKILL at random moments, then restart until done (DESIGN §7, §8): `collect` from a file
//! loses and doubles nothing; `analyze` applies every record exactly once. What is checked
//! is the set of tweet ids, read back from the store's commits and the SQLite file, against
//! the distinct ids of the source computed independently (`tweets_oracle`): a lost tweet
//! and a doubled one cannot cancel out as they would in a count.
//!
//! A kill counts towards the minimum (20, also under `CI`; `REPLIKATIV_LONG=N` runs N) only
//! when it landed while the process was working: it had made durable progress since it
//! started and had not finished.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rand::Rng as _;

use crate::common::cli_support::{Proc, account_ops, arg, tail};
use crate::common::committed::{
    USER, sqlite_ops_applied, sqlite_tweet_ids, store_exists, store_tweet_authors, store_tweet_ids,
};
use crate::common::tweets_oracle::{
    check_each_once, per_author, shipped_source, source_tweets, write_lines,
};
use crate::common::{data_dir, free_port, iterations, run_json, run_ok, wait_exit, wait_port};

/// Restarts a run allowed before a round counts as stuck.
const MAX_RESTARTS: usize = 300;

/// The kills of one round.
#[derive(Debug, Default)]
pub(crate) struct Kills {
    /// Every SIGKILL.
    pub(crate) all: usize,
    /// Those that landed after durable progress of the killed run and before the end.
    pub(crate) mid_work: usize,
}

/// Runs `args` until it exits by itself, SIGKILLing it after a random delay in `delay_ms`
/// each time it is still running. `progress` reads the durable progress (the process is not
/// running when it is called), which ends at `done`.
pub(crate) fn kill_until_done(
    args: &[&str],
    cwd: &Path,
    log: &str,
    delay_ms: std::ops::Range<u64>,
    what: &str,
    progress: impl Fn() -> u64,
    done: u64,
) -> Kills {
    let mut rng = rand::rng();
    let mut kills = Kills::default();
    let mut before = progress();
    for _ in 0..MAX_RESTARTS {
        let mut p = Proc::spawn(args, cwd, log);
        let delay = Duration::from_millis(rng.random_range(delay_ms.clone()));
        if let Some(status) = wait_exit(&mut p.child, delay) {
            assert_eq!(
                status.code(),
                Some(0),
                "{what} exited {status:?}; log:\n{}",
                tail(&cwd.join(log))
            );
            return kills;
        }
        crate::common::kill(&mut p.child);
        kills.all += 1;
        let after = progress();
        assert!(
            after >= before,
            "{what}: durable progress went back from {before} to {after} across a SIGKILL"
        );
        if before < after && after < done {
            kills.mid_work += 1;
        }
        before = after;
    }
    panic!(
        "{what} did not finish within {MAX_RESTARTS} restarts; log:\n{}",
        tail(&cwd.join(log))
    );
}

#[test]
fn collect_killed_at_random_moments_and_restarted_commits_every_tweet_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    collect_kill_rounds(dir.path(), &[], USER, iterations(30, 20).max(20));
}

/// The same for an owned CDVCS (`collect --owned`): every commit is stored with the writer
/// rule's record of it in one batch, so whatever a kill interrupts, every tweet is committed
/// once, the collector starts again (judging from the stored records), and `verify` — which
/// judges the whole history again and compares every stored record — finds nothing wrong.
#[test]
fn owned_collect_killed_at_random_moments_keeps_its_writer_records_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let said = run_ok(&["keygen", "--out", "owner.pem"], d);
    let owner = said.trim().lines().last().expect("keygen names the key");
    let owned = ["--owned", "--key", "owner.pem"];
    collect_kill_rounds(d, &owned, owner, iterations(10, 6).max(6));
}

/// Rounds of `collect` (with `extra` arguments) on fresh stores in `d`, each SIGKILLed at
/// random moments until it finishes, until `target` kills have landed mid-work. After each
/// round the CDVCS of `user` holds every tweet of the source exactly once (the oracle: the
/// source's ids), has one head, and `verify` finds nothing wrong.
fn collect_kill_rounds(d: &Path, extra: &[&str], user: &str, target: usize) {
    let lines = shipped_source(&data_dir());
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let source = source_tweets(&lines);
    let total = source.len() as u64;
    let ids = |store: &Path| -> BTreeMap<String, u64> {
        if !store_exists(store) {
            return BTreeMap::new();
        }
        store_tweet_authors(store, user)
            .into_iter()
            .map(|(id, authors)| (id, authors.len() as u64))
            .collect()
    };
    let (mut kills, mut mid_work, mut round) = (0, 0, 0);
    while mid_work < target {
        round += 1;
        let store = d.join(format!("store-{round}"));
        // Small batches and a short flush interval: kills land while pages are half
        // committed.
        let mut args = vec!["collect", "--store", arg(&store), "--source", arg(&src)];
        args.extend(["--batch", "7", "--flush-ms", "20"]);
        args.extend(extra);
        let k = kill_until_done(
            &args,
            d,
            &format!("collect-{round}.log"),
            0..450,
            "collect",
            || ids(&store).values().sum(),
            total,
        );
        kills += k.all;
        mid_work += k.mid_work;
        if let Err(e) = check_each_once(source.keys(), &ids(&store)) {
            panic!(
                "round {round} after {} kills ({} mid-work): {e}",
                k.all, k.mid_work
            );
        }
        let log = run_json(&["log", "--store", arg(&store), "--user", user], d);
        assert_eq!(log["heads"].as_array().map(Vec::len), Some(1), "{log}");
        let verified = run_ok(&["verify", "--store", arg(&store)], d);
        assert!(verified.contains("ok: no damage found"), "{verified}");
    }
    eprintln!("collect {extra:?}: {mid_work} of {kills} kills mid-work over {round} rounds");
}

#[test]
fn analyze_killed_at_random_moments_and_restarted_applies_every_record_exactly_once() {
    analyze_kills(false, iterations(30, 20).max(20));
}

/// The same over `wss://` (the peer serves the test certificate, `analyze` trusts the test
/// CA): a kill lands in the middle of TLS records too.
#[test]
fn analyze_killed_at_random_moments_over_tls_applies_every_record_exactly_once() {
    analyze_kills(true, iterations(10, 6).max(6));
}

fn analyze_kills(tls: bool, target: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = tls.then(|| crate::tls::pki(d));
    let lines = shipped_source(&data_dir());
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let source = source_tweets(&lines);
    let total = source.len() as u64;
    let store = d.join("collector");
    // Many small commits: kills land between and inside realizer transactions.
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
    if let Err(e) = check_each_once(source.keys(), &store_tweet_ids(&store)) {
        panic!("the collector's store, before any kill: {e}");
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut peer_args = vec!["peer", "--store", arg(&store), "--listen", &listen];
    let mut trust: Vec<&str> = Vec::new();
    if let Some(p) = &pki {
        peer_args.extend(["--tls-cert", arg(&p.cert), "--tls-key", arg(&p.key)]);
        trust.extend(["--ca", arg(&p.ca)]);
    }
    let _peer = Proc::spawn(&peer_args, d, "peer.log");
    wait_port(port, Duration::from_secs(30));
    let url = match tls {
        true => format!("wss://localhost:{port}/"),
        false => format!("ws://127.0.0.1:{port}/"),
    };

    let (mut kills, mut mid_work, mut round) = (0, 0, 0);
    while mid_work < target {
        round += 1;
        let db = d.join(format!("a-{round}.sqlite"));
        let analysis = d.join(format!("analysis-{round}"));
        let mut args = vec![
            "analyze",
            "--store",
            arg(&analysis),
            "--connect",
            &url,
            "--sqlite",
            arg(&db),
            "--timeout",
            "30",
        ];
        args.extend(&trust);
        let k = kill_until_done(
            &args,
            d,
            &format!("analyze-{round}.log"),
            0..900,
            "analyze",
            || sqlite_ops_applied(&db),
            total,
        );
        kills += k.all;
        mid_work += k.mid_work;
        let after = format!(
            "round {round} after {} kills ({} mid-work)",
            k.all, k.mid_work
        );
        if let Err(e) = check_each_once(source.keys(), &store_tweet_ids(&analysis)) {
            panic!("{after}: the replicated store: {e}");
        }
        // The tweets table is keyed by id, so it shows what was lost or foreign; the
        // per-account op counters (bumped by every apply) show what was applied twice.
        let in_sink: BTreeMap<String, u64> = sqlite_tweet_ids(&db)
            .into_iter()
            .map(|id| (id, 1))
            .collect();
        if let Err(e) = check_each_once(source.keys(), &in_sink) {
            panic!("{after}: the SQLite tweets: {e}");
        }
        assert_eq!(
            account_ops(&db),
            per_author(&source),
            "{after}: per-account op counts differ from the source's tweets per author"
        );
        assert_eq!(sqlite_ops_applied(&db), total, "{after}: ops_applied");
    }
    eprintln!("analyze: {mid_work} of {kills} kills mid-work over {round} rounds");
}
