//! `replikativ upgrade` on a store written by the code before packs (the committed fixture
//! `tests/fixtures/format-1-store`, see its README): refused until upgraded, then realized in
//! full; and SIGKILLed at random moments, after each of which the store is the old one,
//! byte for byte, or the new one complete. The oracle is the tweet ids of the fixture's
//! source lines, read from `data/tweets` independently of the store.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::Rng as _;

use crate::common::cli_support::{analyze_once, arg, tail};
use crate::common::committed::{sqlite_tweet_ids, store_tweet_ids};
use crate::common::tweets_oracle::{check_each_once, source_tweets};
use crate::common::*;
use replikativ::store::upgrade::{WORK_DIR, backup_name};

/// The backup of the fixture, a store of format 1 (as [`backup_name`] names it).
const BACKUP: &str = "store.format-1.redb";
use replikativ::store::{FILE_NAME, FORMAT_VERSION, Store};

/// The fixture's store file.
fn fixture_bytes() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/format-1-store")
        .join(FILE_NAME);
    std::fs::read(path).expect("read the fixture")
}

fn fixture_copy(to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::write(to.join(FILE_NAME), fixture_bytes()).expect("copy the fixture");
}

/// The tweet ids the fixture was collected from: the first 60 lines of `flat.jsonl`, then
/// `geo_tweets.jsonl` (as its README says).
fn oracle() -> BTreeMap<String, String> {
    let read = |f: &str| std::fs::read(data_dir().join(f)).expect("read the source");
    let flat = read("flat.jsonl");
    let geo = read("geo_tweets.jsonl");
    let lines: Vec<Vec<u8>> = flat
        .split(|b| *b == b'\n')
        .take(60)
        .chain(geo.split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let tweets = source_tweets(&lines);
    assert_eq!(tweets.len(), 62, "the fixture holds 62 tweets");
    tweets
}

/// The store in `dir` is the new one, complete: of this build's format, `verify` clean, every
/// source tweet once; the old one is kept as the backup, byte for byte.
fn assert_upgraded(dir: &Path, cwd: &Path, what: &str) {
    let store = Store::open_read_only(dir).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(store.format().expect("format"), FORMAT_VERSION, "{what}");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{what}: {report}");
    assert!(
        report.packs_checked >= 3,
        "{what}: the params are packed: {report}"
    );
    drop(store);
    run_ok(&["verify", "--store", arg(dir)], cwd);
    if let Err(e) = check_each_once(oracle().keys(), &store_tweet_ids(dir)) {
        panic!("{what}: {e}");
    }
    let backup = std::fs::read(dir.join(BACKUP)).expect("the backup is kept");
    assert!(
        backup == fixture_bytes(),
        "{what}: the backup is the old store"
    );
}

#[test]
fn a_format_1_store_is_refused_then_upgraded_verified_and_realized_in_full() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    let dir = cwd.join("old");
    fixture_copy(&dir);
    let refused = run(&["log", "--store", "old"], cwd);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("replikativ upgrade --store old"),
        "the refusal names the command: {stderr}"
    );
    assert!(fixture_bytes() == std::fs::read(dir.join(FILE_NAME)).expect("read"));

    assert_eq!(backup_name(1), BACKUP);
    let out = run_ok(&["upgrade", "--store", "old"], cwd);
    assert!(
        out.contains("62 values") || out.contains("68 values"),
        "{out}"
    );
    assert!(out.contains(BACKUP), "says where the old store is: {out}");
    assert!(!dir.join(WORK_DIR).exists(), "no work left behind");
    assert_upgraded(&dir, cwd, "after upgrade");
    let log = run_json(&["log", "--store", "old"], cwd);
    assert_eq!(
        (log["commits"].as_u64(), log["transactions"].as_u64()),
        (Some(5), Some(62))
    );
    let again = run_ok(&["upgrade", "--store", "old"], cwd);
    assert!(again.contains("already"), "{again}");

    // Served by a peer and realized by an analyzer: every source tweet, each once.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut peer = spawn(
        &["peer", "--store", "old", "--listen", &listen],
        cwd,
        "peer.log",
    );
    wait_port(port, Duration::from_secs(30));
    let sqlite = cwd.join("t.sqlite");
    let analyzed = analyze_once(cwd, &cwd.join("new"), port, &sqlite);
    terminate(&peer);
    wait_exit(&mut peer, Duration::from_secs(30));
    assert!(
        analyzed.status.success(),
        "analyze: {}",
        String::from_utf8_lossy(&analyzed.stderr)
    );
    let realized: BTreeMap<String, u64> = sqlite_tweet_ids(&sqlite)
        .into_iter()
        .map(|id| (id, 1))
        .collect();
    check_each_once(oracle().keys(), &realized).expect("realized as the source");
}

/// Where an upgrade stood when it was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stood {
    /// Nothing written yet: the old store, alone.
    NotStarted,
    /// The new store half built beside the old one.
    Building,
    /// The new store built and verified, the old one still in place.
    Verified,
    /// The new store in place (its work directory maybe not yet removed).
    Swapped,
}

/// The store in `dir` after a kill: the old one intact (and where the upgrade stood), or the
/// new one complete.
fn check_after_kill(dir: &Path, cwd: &Path, what: &str) -> Stood {
    let now = std::fs::read(dir.join(FILE_NAME)).expect("a store file is always there");
    let work = dir.join(WORK_DIR);
    if now == fixture_bytes() {
        let backup = dir.join(BACKUP);
        if backup.exists() {
            let kept = std::fs::read(&backup).expect("read");
            assert!(kept == now, "{what}: a backup that is not the old store");
        }
        return match (work.exists(), work.join("complete").exists()) {
            (false, _) => Stood::NotStarted,
            (true, false) => Stood::Building,
            (true, true) => Stood::Verified,
        };
    }
    assert_upgraded(dir, cwd, what);
    Stood::Swapped
}

#[test]
fn upgrade_killed_at_random_moments_loses_nothing_and_a_final_run_completes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    // How long one upgrade takes here, to spread the kills over it.
    let timed = cwd.join("timed");
    fixture_copy(&timed);
    let start = Instant::now();
    run_ok(&["upgrade", "--store", arg(&timed)], cwd);
    let span = start.elapsed().as_millis() as u64 * 3 / 2 + 20;
    let target = iterations(20, 8);
    let mut rng = rand::rng();
    let (mut mid_work, mut round) = (0, 0);
    let mut seen: BTreeMap<Stood, usize> = BTreeMap::new();
    while mid_work < target {
        round += 1;
        assert!(round <= 200, "too few kills landed mid-work: {seen:?}");
        let dir = cwd.join(format!("store-{round}"));
        fixture_copy(&dir);
        let log = format!("upgrade-{round}.log");
        // Kill runs until one finishes by itself.
        for attempt in 0.. {
            assert!(
                attempt < 100,
                "upgrade never finished; log:\n{}",
                tail(&cwd.join(&log))
            );
            let mut child = spawn(&["upgrade", "--store", arg(&dir)], cwd, &log);
            let delay = Duration::from_millis(rng.random_range(0..span));
            if let Some(status) = wait_exit(&mut child, delay) {
                assert!(
                    status.success(),
                    "upgrade failed; log:\n{}",
                    tail(&cwd.join(&log))
                );
                break;
            }
            kill(&mut child);
            let what = format!("round {round}, kill {attempt} after {delay:?}");
            let stood = check_after_kill(&dir, cwd, &what);
            *seen.entry(stood).or_default() += 1;
            if stood != Stood::NotStarted {
                mid_work += 1;
            }
        }
        assert_upgraded(&dir, cwd, &format!("round {round}, finished"));
        assert!(
            !dir.join(WORK_DIR).exists(),
            "round {round}: work left behind"
        );
    }
    eprintln!("upgrade: kills by where they landed over {round} rounds: {seen:?}");
}

/// The states a kill leaves, made on purpose (a kill lands in some only rarely): the next
/// run finishes each; a verified store built from another old store is built again; a file
/// in the backup's place stops the upgrade with the old store untouched.
#[test]
fn every_state_a_kill_can_leave_is_finished_by_the_next_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    let built = cwd.join("built");
    fixture_copy(&built);
    run_ok(&["upgrade", "--store", arg(&built)], cwd);
    let new_store = std::fs::read(built.join(FILE_NAME)).expect("read");
    let other = cwd.join("other");
    std::fs::create_dir_all(&other).expect("mkdir");
    let pre_signing = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pre-signing-store")
        .join(FILE_NAME);
    std::fs::copy(pre_signing, other.join(FILE_NAME)).expect("copy");
    run_ok(&["upgrade", "--store", arg(&other)], cwd);
    let other_store = std::fs::read(other.join(FILE_NAME)).expect("read");

    let put = |path: &Path, bytes: &[u8]| {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    };
    type Setup<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "half built",
            Box::new(|d: &Path| put(&d.join(WORK_DIR).join(FILE_NAME), &new_store[..8192])),
            "copying",
        ),
        (
            "built and verified",
            Box::new(|d: &Path| {
                put(&d.join(WORK_DIR).join(FILE_NAME), &new_store);
                put(&d.join(WORK_DIR).join("complete"), b"");
            }),
            "again",
        ),
        (
            "verified, the backup linked",
            Box::new(|d: &Path| {
                put(&d.join(WORK_DIR).join(FILE_NAME), &new_store);
                put(&d.join(WORK_DIR).join("complete"), b"");
                std::fs::hard_link(d.join(FILE_NAME), d.join(BACKUP)).expect("link");
            }),
            "again",
        ),
        (
            "swapped, the work directory left",
            Box::new(|d: &Path| {
                std::fs::hard_link(d.join(FILE_NAME), d.join(BACKUP)).expect("link");
                std::fs::remove_file(d.join(FILE_NAME)).expect("unlink");
                put(&d.join(FILE_NAME), &new_store);
                put(&d.join(WORK_DIR).join("complete"), b"");
            }),
            "",
        ),
        (
            "verified from another old store",
            Box::new(|d: &Path| {
                put(&d.join(WORK_DIR).join(FILE_NAME), &other_store);
                put(&d.join(WORK_DIR).join("complete"), b"");
            }),
            "no longer matches",
        ),
    ];
    for (i, (what, setup, says)) in cases.iter().enumerate() {
        let dir = cwd.join(format!("case-{i}"));
        fixture_copy(&dir);
        setup(&dir);
        let out = run(&["upgrade", "--store", arg(&dir)], cwd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {stderr}");
        assert!(stderr.contains(says), "{what}: {stderr}");
        assert_upgraded(&dir, cwd, what);
        assert!(!dir.join(WORK_DIR).exists(), "{what}: work left behind");
    }

    let dir = cwd.join("in-the-way");
    fixture_copy(&dir);
    put(&dir.join(BACKUP), b"someone else's file");
    let out = run(&["upgrade", "--store", arg(&dir)], cwd);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(BACKUP) && stderr.contains("move it away"),
        "{stderr}"
    );
    let now = std::fs::read(dir.join(FILE_NAME)).expect("read");
    assert!(now == fixture_bytes(), "the old store is untouched");
    assert_eq!(
        std::fs::read(dir.join(BACKUP)).expect("read"),
        b"someone else's file"
    );
}

/// `demo` run again in a directory an earlier build left (its stores in an older format)
/// upgrades its own stores in place, keeping the old files as backups, and runs to the end
/// instead of stopping at the format refusal.
#[test]
fn a_demo_directory_left_by_an_earlier_build_is_upgraded_and_the_demo_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    fixture_copy(&demo.join("collector-store"));
    let out = run(&["demo", "--dir", arg(&demo)], dir.path());
    let said = String::from_utf8_lossy(&out.stdout);
    let logged = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo exited {:?}\nstdout:\n{said}\nstderr:\n{logged}",
        out.status.code()
    );
    let store = demo.join("collector-store");
    assert!(store.join(backup_name(1)).exists(), "the old store is kept");
    assert!(
        format!("{said}{logged}").contains(&format!("upgraded to store format {FORMAT_VERSION}")),
        "the upgrade is said:\n{said}\n{logged}"
    );
    // The store is upgraded, verified, and still holds every tweet of the earlier build's
    // (the demo added its own sample beside them).
    let opened = Store::open_read_only(&store).expect("closed cleanly, readable");
    assert_eq!(opened.format().expect("format"), FORMAT_VERSION);
    assert!(opened.verify().expect("verify").is_ok());
    drop(opened);
    let held = store_tweet_ids(&store);
    let lost: Vec<String> = oracle()
        .into_keys()
        .filter(|id| !held.contains_key(id))
        .collect();
    assert!(
        lost.is_empty(),
        "tweets of the earlier build lost: {lost:?}"
    );
    assert!(
        std::fs::read(store.join(BACKUP)).expect("the backup") == fixture_bytes(),
        "the backup is the old store"
    );
}
