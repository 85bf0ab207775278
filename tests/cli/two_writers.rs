//! Two writers of one owned CDVCS over the network (DESIGN §11, §12; issue 15): the owner A
//! grants W write access while A's store is stopped; then A and W collect different tweet
//! files into that CDVCS at the same time, W connected to A, both files growing. Their
//! concurrent commits are joined into one head, an analyzer C following A realizes every
//! tweet of both files exactly once, and SQLite's `commit_author` names the writer whose file
//! each tweet came from. Oracles: the tweet ids of the two source files, parsed with
//! serde_json independently of the crate's parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use crate::common::cli_support::{Proc, account_ops, arg, tail};
use crate::common::committed::{CDVCS, sqlite_ops_applied, store_tweet_authors};
use crate::common::tweets_oracle::{check_each_once, per_author, source_tweets};
use crate::common::wait::periodic_check;
use crate::common::{append_lines, data_dir, free_port, run_json, run_ok, wait_port};

const T: Duration = Duration::from_secs(60);

fn last_line(out: &str) -> String {
    out.lines().last().unwrap_or_default().to_owned()
}

/// The lines of the shipped files named, in order, each ending in a newline.
fn shipped(files: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(data_dir().join(f)).expect("shipped tweets");
        out.extend(text.lines().map(|l| format!("{l}\n")));
    }
    out
}

/// The distinct tweet ids of `lines` (with their `author_id` keys), by the oracle's parser.
fn ids_of(lines: &[String]) -> BTreeMap<String, String> {
    let bytes: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| l.trim_end().as_bytes().to_vec())
        .collect();
    source_tweets(&bytes)
}

/// Copies the files of a (stopped) store directory.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// How many commits of the owned CDVCS in the store at `dir` join two or more parents.
fn joins(dir: &Path, owner: &str) -> usize {
    use replikativ::store::{Store, keys};
    let store = Store::open(dir).expect("open store");
    let crdt: uuid::Uuid = CDVCS.parse().expect("uuid");
    store
        .scan_state(&keys::graph_prefix(owner, &crdt))
        .expect("graph")
        .into_iter()
        .filter(|(k, _)| {
            let id = keys::graph_entry_commit(k).expect("graph key");
            let bytes = store.get_value(&id).expect("read").expect("commit");
            let commit = replikativ::crdt::Commit::decode(&bytes).expect("decode");
            commit.commit.parents.len() >= 2
        })
        .count()
}

/// `tweets.id` → `tweets.commit_author` of a realized SQLite file; None while the file or
/// its table is not there yet (the analyzer creates them).
fn commit_authors(db: &Path) -> Option<BTreeMap<String, Option<String>>> {
    if !db.is_file() {
        return None;
    }
    let conn = rusqlite::Connection::open(db).ok()?;
    let mut stmt = conn.prepare("SELECT id, commit_author FROM tweets").ok()?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok()?
        .collect::<Result<_, _>>()
        .ok()?;
    Some(rows)
}

#[test]
fn a_granted_writer_and_the_owner_collect_concurrently_and_c_attributes_each_tweet_to_its_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let one = shipped(&["brexit.jsonl", "kpop.jsonl", "geo_tweets.jsonl"]);
    let two = shipped(&["flat.jsonl", "withheld.jsonl", "entities_test.jsonl"]);
    let (ids1, ids2) = (ids_of(&one), ids_of(&two));
    // The oracle attributes file 1 to A and file 2 to W. A tweet id in both files could be
    // committed by either writer (each commits an id at most once, but they race), so the
    // files have no id in common, and that is checked rather than assumed.
    let common: Vec<&String> = ids1.keys().filter(|id| ids2.contains_key(*id)).collect();
    assert!(common.is_empty(), "the files share tweet ids {common:?}");
    assert!(!ids1.is_empty() && !ids2.is_empty());
    let mut all: BTreeMap<String, String> = ids1.clone();
    all.extend(ids2.clone());

    let owner = last_line(&run_ok(&["keygen", "--out", "a.pem"], d));
    let writer = last_line(&run_ok(&["keygen", "--out", "w.pem"], d));
    // A's store holds the owned CDVCS; the owner grants W write access while it is stopped.
    std::fs::write(d.join("empty.jsonl"), "").expect("write empty source");
    run_ok(
        &[
            "collect",
            "--owned",
            "--key",
            "a.pem",
            "--store",
            "a",
            "--source",
            "empty.jsonl",
        ],
        d,
    );
    run_ok(
        &[
            "grant", "--store", "a", "--user", &owner, "--write", &writer, "--key", "a.pem",
        ],
        d,
    );
    // W starts from the owner's history, grant included: its collect judges the grant there.
    copy_dir(&d.join("a"), &d.join("w"));

    // File 1 has 4 lines, file 2 has 106: each grows in up to 6 appends.
    let rounds = 6;
    let (mut chunks1, mut chunks2) = (
        one.chunks(one.len().div_ceil(rounds)),
        two.chunks(two.len().div_ceil(rounds)),
    );
    let (f1, f2) = (d.join("one.jsonl"), d.join("two.jsonl"));
    append_lines(&f1, chunks1.next().expect("a chunk"));
    append_lines(&f2, chunks2.next().expect("a chunk"));
    let pa = free_port();
    let la = format!("127.0.0.1:{pa}");
    let ua = format!("ws://{la}/");
    let pace = ["--follow", "--flush-ms", "50", "--batch", "7"];
    let mut args_a = vec![
        "collect",
        "--owned",
        "--key",
        "a.pem",
        "--store",
        "a",
        "--source",
        "one.jsonl",
        "--listen",
        &la,
    ];
    args_a.extend(pace);
    let mut a = Proc::spawn(&args_a, d, "a.log");
    wait_port(pa, T);
    let mut args_w = vec![
        "collect",
        "--user",
        &owner,
        "--key",
        "w.pem",
        "--store",
        "w",
        "--source",
        "two.jsonl",
        "--connect",
        &ua,
    ];
    args_w.extend(pace);
    let mut w = Proc::spawn(&args_w, d, "w.log");
    let db = d.join("c.sqlite");
    let mut c = Proc::spawn(
        &[
            "analyze",
            "--store",
            "c",
            "--connect",
            &ua,
            "--sqlite",
            arg(&db),
            "--user",
            &owner,
            "--follow",
        ],
        d,
        "c.log",
    );
    // Both writers are live: C (Wait policy, following A) has realized tweets of each.
    let by = |key: &str| {
        commit_authors(&db)
            .unwrap_or_default()
            .values()
            .any(|a| a.as_deref() == Some(key))
    };
    assert!(
        periodic_check(|| by(&owner) && by(&writer), T),
        "C never realized tweets of both writers; logs:\na: {}\nw: {}\nc: {}",
        tail(&d.join("a.log")),
        tail(&d.join("w.log")),
        tail(&d.join("c.log"))
    );
    // Then both files grow at once, while both writers commit into the CDVCS.
    crate::common::grow_together((&f1, chunks1), (&f2, chunks2));
    // C (Wait policy) realizes everything only once A holds both writers' commits joined.
    let realized = periodic_check(|| sqlite_ops_applied(&db) >= all.len() as u64, T);
    assert!(
        realized,
        "C applied {} of {} tweets; logs:\na: {}\nw: {}\nc: {}",
        sqlite_ops_applied(&db),
        all.len(),
        tail(&d.join("a.log")),
        tail(&d.join("w.log")),
        tail(&d.join("c.log"))
    );
    c.terminate_ok("analyze", &d.join("c.log"));
    w.terminate_ok("writer W", &d.join("w.log"));
    a.terminate_ok("owner A", &d.join("a.log"));

    // C's SQLite: every tweet of both files once, each attributed to its file's writer.
    let rows = commit_authors(&db).expect("C's SQLite");
    let once: BTreeMap<String, u64> = rows.keys().map(|id| (id.clone(), 1)).collect();
    if let Err(e) = check_each_once(all.keys(), &once) {
        panic!("C's SQLite: {e}");
    }
    for (ids, who, name) in [(&ids1, &owner, "A"), (&ids2, &writer, "W")] {
        let wrong: Vec<(&String, &Option<String>)> = ids
            .keys()
            .filter_map(|id| rows.get_key_value(id))
            .filter(|(_, author)| author.as_deref() != Some(who.as_str()))
            .collect();
        assert!(
            wrong.is_empty(),
            "tweets of {name}'s file not attributed to {who}: {wrong:?}"
        );
    }
    assert_eq!(sqlite_ops_applied(&db), all.len() as u64, "each op once");
    assert_eq!(account_ops(&db), per_author(&all), "each op applied once");

    // Both stores: one head, the same one; every tweet once, under the author of its file.
    let logs: Vec<serde_json::Value> = ["a", "w"]
        .iter()
        .map(|s| run_json(&["log", "--store", s, "--user", &owner], d))
        .collect();
    for (store, log) in ["a", "w"].iter().zip(&logs) {
        let heads = log["heads"].as_array().expect("heads");
        assert_eq!(heads.len(), 1, "store {store} ends with one head: {log}");
        assert_eq!(
            log["authors"],
            serde_json::json!({ owner.clone(): ids1.len(), writer.clone(): ids2.len() }),
            "store {store}"
        );
        assert_eq!(log["grants"], 1, "store {store}");
        let held = store_tweet_authors(&d.join(store), &owner);
        let counts: BTreeMap<String, u64> = held
            .iter()
            .map(|(id, by)| (id.clone(), by.len() as u64))
            .collect();
        if let Err(e) = check_each_once(all.keys(), &counts) {
            panic!("store {store}: {e}");
        }
        let misattributed: BTreeSet<&String> = held
            .iter()
            .filter(|(id, by)| {
                let expect = if ids1.contains_key(*id) {
                    &owner
                } else {
                    &writer
                };
                by.iter().any(|b| b != expect)
            })
            .map(|(id, _)| id)
            .collect();
        assert!(misattributed.is_empty(), "store {store}: {misattributed:?}");
        run_ok(&["verify", "--store", store], d);
    }
    // Once the stopped stores exchange what they hold, they agree. (Not before: a writer
    // stopped while the other's last commit was on its way joins without it.)
    {
        use replikativ::identity::Keypair;
        let crdt = replikativ::crdt::CrdtKey::new(
            owner.as_str(),
            replikativ::cli::args::DEFAULT_CDVCS.parse().expect("uuid"),
        );
        let (a_key, w_key) = (
            Keypair::generate().expect("key"),
            Keypair::generate().expect("key"),
        );
        crate::common::exchange::exchange(&d.join("a"), a_key, &d.join("w"), w_key, &crdt);
        let heads: Vec<serde_json::Value> = ["a", "w"]
            .iter()
            .map(|s| run_json(&["log", "--store", s, "--user", &owner], d)["heads"].clone())
            .collect();
        assert_eq!(heads[0], heads[1], "A and W agree once they have exchanged");
    }
    // The writers did write concurrently: A's graph joins their branches.
    let joined = joins(&d.join("a"), &owner);
    eprintln!(
        "two writers: {} + {} tweets, {joined} joins in A's graph",
        ids1.len(),
        ids2.len()
    );
    assert!(joined >= 1, "no concurrent commits were joined");
}
