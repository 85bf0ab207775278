//! Storage faults: truncated and bit-flipped store files give a clear error (exit 1), never a
//! panic (exit 101) and never wrong data; a failed store write fails its caller with context
//! and restarts the store actor and everything after it, losing no acknowledged write; a full
//! disk or failing writes and syncs ([`FaultyDisk`]) fail writes with their cause, lose nothing
//! acknowledged, and the store and a node over it resume by themselves once writes succeed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::common::stage_support::{child, fresh_key, memory_realizer, note};
use crate::common::wait::{eventually, eventually_async};
use crate::faulty_backend::{Fault, FaultyDisk};
use replikativ::Id;
use replikativ::Node;
use replikativ::node::StoreLocation;
use replikativ::realize::MemorySink;
use replikativ::realize::realizer::{ConflictPolicy, error_chain};
use replikativ::store::{FILE_NAME, StateRecords, Store, WriteBatch};
use replikativ_actors::{ChildState, EventKind, ExitReason};

const T: Duration = Duration::from_secs(30);

/// A store filled by `collect` from the shipped flat tweets in commits of `batch`, and its
/// `log --json` line. Commits of one tweet keep it loose (uncompressed, its text verbatim in
/// the file); larger commits store their tweets compressed together in a pack.
fn collected_store(cwd: &Path, batch: usize) -> (PathBuf, String) {
    let source = crate::common::data_dir().join("flat.jsonl");
    let name = format!("good-{batch}");
    crate::common::run_ok(
        &[
            "collect",
            "--store",
            &name,
            "--source",
            source.to_str().expect("utf-8"),
            "--batch",
            &batch.to_string(),
        ],
        cwd,
    );
    let log = last_line(&crate::common::run(
        &["log", "--store", &name, "--json"],
        cwd,
    ));
    (cwd.join(name), log)
}

fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// A copy of `good` named `name` whose store file `damage` rewrites.
fn damaged_copy(good: &Path, name: &str, damage: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let dir = good.with_file_name(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut bytes = std::fs::read(good.join(FILE_NAME)).expect("read store file");
    damage(&mut bytes);
    std::fs::write(dir.join(FILE_NAME), bytes).expect("write damaged copy");
    dir
}

/// Runs `verify` and `log --json` on `dir`: each either fails cleanly (exit 1, a message on
/// stderr) or succeeds; `log` succeeding must print exactly the undamaged answer, and a
/// store `verify` passes must read back exactly as the original. Returns verify's exit code.
fn check_damaged(cwd: &Path, dir: &Path, what: &str, good_log: &str) -> i32 {
    let d = dir.to_str().expect("utf-8");
    let verify = crate::common::run(&["verify", "--store", d], cwd);
    let log = crate::common::run(&["log", "--store", d, "--json"], cwd);
    for (cmd, out) in [("verify", &verify), ("log", &log)] {
        let code = out.status.code().expect("exit code");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && code != 101,
            "{cmd} on {what} panicked:\n{stderr}"
        );
        assert!(
            code == 0 || code == 1,
            "{cmd} on {what} exited {code}:\n{stderr}"
        );
        if code == 1 {
            assert!(
                stderr.trim().len() > 10,
                "{cmd} on {what} failed without saying why"
            );
        }
    }
    if log.status.success() {
        assert_eq!(
            last_line(&log),
            good_log,
            "log on {what} printed wrong data"
        );
    }
    let code = verify.status.code().expect("exit code");
    if code == 0 {
        assert!(
            log.status.success(),
            "verify passed {what} but log failed: {}",
            String::from_utf8_lossy(&log.stderr)
        );
    }
    code
}

#[test]
fn a_truncated_store_file_fails_verify_and_log_cleanly_never_with_a_panic_or_wrong_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    let (good, good_log) = collected_store(cwd, 10);
    assert!(good_log.contains("\"commits\":10"), "{good_log}");
    let len = std::fs::metadata(good.join(FILE_NAME)).expect("meta").len() as usize;
    let mut failed = 0;
    for (i, keep) in [0, 16, 512, 4096, len / 4, len / 2, len * 3 / 4, len - 1]
        .into_iter()
        .enumerate()
    {
        let dir = damaged_copy(&good, &format!("trunc-{i}"), |b| b.truncate(keep));
        let code = check_damaged(
            cwd,
            &dir,
            &format!("the file cut to {keep} of {len} bytes"),
            &good_log,
        );
        failed += usize::from(code == 1);
    }
    assert!(
        failed >= 4,
        "most truncations must be reported by verify ({failed})"
    );
}

/// The tweets `(id, text)` of the shipped flat source, in order, parsed with serde_json
/// (`tweets_oracle`), independently of the crate's parser.
fn source_tweets() -> Vec<(String, String)> {
    let bytes = std::fs::read(crate::common::data_dir().join("flat.jsonl")).expect("read source");
    bytes
        .split(|b| *b == b'\n')
        .flat_map(|line| crate::common::tweets_oracle::tweets_in(line).unwrap_or_default())
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_string(),
                t["text"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Where `needle` starts in `haystack`, every time.
fn occurrences(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// How a store is read for the oracle comparison.
trait StoreReader {
    fn state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    fn scan(&self, prefix: &[u8]) -> Result<StateRecords, String>;
    fn value(&self, id: &Id) -> Result<Option<Vec<u8>>, String>;
}

/// The store as the crate reads it: opened with redb's integrity check, values re-hashed.
struct Checked(Store);

impl StoreReader for Checked {
    fn state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.0.get_state(key).map_err(|e| error_chain(&e))
    }
    fn scan(&self, prefix: &[u8]) -> Result<StateRecords, String> {
        self.0.scan_state(prefix).map_err(|e| error_chain(&e))
    }
    fn value(&self, id: &Id) -> Result<Option<Vec<u8>>, String> {
        self.0.get_value(id).map_err(|e| error_chain(&e))
    }
}

/// The MUTATION: the same file through redb directly, without the integrity check on open
/// and without re-hashing values; the oracle comparison must catch what it lets through.
struct Unchecked(redb::Database);

const VALUES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("values");
const STATE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("state");

impl Unchecked {
    fn open(path: &Path) -> Result<Unchecked, String> {
        redb::Builder::new()
            .set_check_integrity_on_open(false)
            .open(path)
            .map(Unchecked)
            .map_err(|e| e.to_string())
    }

    fn get(
        &self,
        table: redb::TableDefinition<&[u8], &[u8]>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        use redb::ReadableDatabase;
        let txn = self.0.begin_read().map_err(|e| e.to_string())?;
        let t = txn.open_table(table).map_err(|e| e.to_string())?;
        let got = t.get(key).map_err(|e| e.to_string())?;
        Ok(got.map(|g| g.value().to_vec()))
    }
}

impl StoreReader for Unchecked {
    fn state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.get(STATE, key)
    }
    fn scan(&self, prefix: &[u8]) -> Result<StateRecords, String> {
        use redb::ReadableDatabase;
        let txn = self.0.begin_read().map_err(|e| e.to_string())?;
        let t = txn.open_table(STATE).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for item in t.range::<&[u8]>(prefix..).map_err(|e| e.to_string())? {
            let (k, v) = item.map_err(|e| e.to_string())?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
    fn value(&self, id: &Id) -> Result<Option<Vec<u8>>, String> {
        self.get(VALUES, id.as_bytes())
    }
}

/// Every collected tweet `(id, text)` the reader returns, commit by commit from the root, or
/// the first error.
fn read_tweets(r: &dyn StoreReader) -> Result<Vec<(String, String)>, String> {
    use replikativ::cli::args::{DEFAULT_CDVCS, DEFAULT_USER};
    use replikativ::store::keys;
    let crdt: uuid::Uuid = DEFAULT_CDVCS.parse().expect("uuid");
    let heads = r
        .state(&keys::heads(DEFAULT_USER, &crdt))?
        .ok_or("no heads record")?;
    let heads: Vec<Id> = rmp_serde::from_slice(&heads).map_err(|e| format!("heads: {e}"))?;
    let mut entries = Vec::new();
    for (k, v) in r.scan(&keys::graph_prefix(DEFAULT_USER, &crdt))? {
        let id = keys::graph_entry_commit(&k).ok_or("a damaged graph key")?;
        let parents: Vec<Id> = rmp_serde::from_slice(&v).map_err(|e| format!("graph: {e}"))?;
        entries.push((id, parents));
    }
    let cdvcs = replikativ::crdt::Cdvcs::restore(entries, heads).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (id, parents) in cdvcs.entries() {
        if parents.is_empty() {
            continue;
        }
        let bytes = r.value(&id)?.ok_or(format!("commit {id} missing"))?;
        let commit = replikativ::crdt::Commit::decode(&bytes).map_err(|e| e.to_string())?;
        for tx in &commit.commit.transactions {
            let params = r
                .value(&tx.params)?
                .ok_or(format!("params {} missing", tx.params))?;
            let v: serde_json::Value =
                rmp_serde::from_slice(&params).map_err(|e| format!("params: {e}"))?;
            out.push((
                v["id"].as_str().unwrap_or_default().to_string(),
                v["text"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(out)
}

/// How a damaged store showed its damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    /// Refused on open.
    OnOpen,
    /// The read touching it failed.
    OnRead,
    /// Reads returned exactly the source; `verify` reported it.
    ByVerify,
    /// Reads returned exactly the source and `verify` passed: the flip changed nothing read.
    Nothing,
}

/// Reads `dir` with `open` and compares with the oracle: `Err` when a tweet came back
/// changed, missing or extra without an error (a silent lie), or when reading panicked.
fn compare_with_source(
    dir: &Path,
    oracle: &[(String, String)],
    checked: bool,
) -> Result<Seen, String> {
    let read = std::panic::catch_unwind(|| -> Result<Result<Vec<_>, String>, String> {
        if checked {
            let store = Store::open(dir).map_err(|e| error_chain(&e))?;
            Ok(read_tweets(&Checked(store)))
        } else {
            let db = Unchecked::open(&dir.join(FILE_NAME))?;
            Ok(read_tweets(&db))
        }
    })
    .map_err(|p| format!("reading panicked: {p:?}"))?;
    match read {
        Err(_) => Ok(Seen::OnOpen),
        Ok(Err(_)) => Ok(Seen::OnRead),
        Ok(Ok(tweets)) if tweets == oracle => Ok(Seen::Nothing),
        Ok(Ok(tweets)) => {
            let at = tweets.iter().zip(oracle).position(|(a, b)| a != b);
            Err(format!(
                "a silently changed tweet: {} read, {} in the source, first difference at {at:?}: \
                 read {:?}, source {:?}",
                tweets.len(),
                oracle.len(),
                at.and_then(|i| tweets.get(i)),
                at.and_then(|i| oracle.get(i)),
            ))
        }
    }
}

/// `verify` on `dir` exits 1 naming the damage.
fn expect_verify_names_damage(cwd: &Path, dir: &Path) {
    let verify = crate::common::run(&["verify", "--store", dir.to_str().expect("utf-8")], cwd);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert_eq!(verify.status.code(), Some(1), "{stdout}{stderr}");
    // Either redb's page checksums refuse the file on open, or the re-hash names the value.
    assert!(
        stdout.contains("damaged:") || stderr.contains("is damaged"),
        "verify names the damage:\n{stdout}{stderr}"
    );
}

#[test]
fn a_bit_flip_in_a_value_is_named_by_verify_and_random_flips_never_panic_or_lie() {
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    let oracle = source_tweets();
    assert_eq!(oracle.len(), 100, "the oracle reads the shipped tweets");

    // A flip inside a loose tweet's stored params (commits of one tweet): verify names the
    // damaged value. (Every stored copy of the text: redb copies pages on write, so the first
    // copy in the file may be a stale one that nothing reads any more.)
    let (loose, loose_log) = collected_store(cwd, 1);
    assert_eq!(
        compare_with_source(&loose, &oracle, true),
        Ok(Seen::Nothing),
        "the undamaged store reads back as the source"
    );
    // Read after the store was opened (opening it may rewrite redb's own records): the
    // damaged copies are made of the file as it is now.
    let bytes = std::fs::read(loose.join(FILE_NAME)).expect("read");
    let first_text = &oracle[0].1;
    let copies = occurrences(&bytes, &first_text.as_bytes()[..first_text.len().min(24)]);
    assert!(!copies.is_empty(), "the tweet's text is stored verbatim");
    let dir = damaged_copy(&loose, "flip-value", |b| {
        for &at in &copies {
            b[at + 3] ^= 0x10;
        }
    });
    expect_verify_names_damage(cwd, &dir);
    check_damaged(cwd, &dir, "a flipped value byte", &loose_log);

    // A flip inside every stored copy of each pack (commits of 10 tweets store theirs
    // compressed together): verify names it, and reading the tweets reports it.
    let (good, good_log) = collected_store(cwd, 10);
    assert_eq!(
        compare_with_source(&good, &oracle, true),
        Ok(Seen::Nothing),
        "the undamaged store reads back as the source"
    );
    let bytes = std::fs::read(good.join(FILE_NAME)).expect("read");
    assert!(
        occurrences(&bytes, first_text.as_bytes()).is_empty(),
        "packed tweets are compressed"
    );
    let packs = occurrences(&bytes, &[&replikativ::pack::MAGIC[..], &[1]].concat());
    assert!(packs.len() >= 10, "ten commits, ten packs: {packs:?}");
    // Past the header (magic, version, 10 lengths), inside the compressed frame.
    let flip = |b: &mut Vec<u8>| {
        for &at in &packs {
            b[at + 60] ^= 0x10;
        }
    };
    let dir = damaged_copy(&good, "flip-pack", flip);
    expect_verify_names_damage(cwd, &dir);
    check_damaged(cwd, &dir, "a flipped pack byte", &good_log);
    let dir = damaged_copy(&good, "flip-pack-read", flip);
    let read = compare_with_source(&dir, &oracle, true).expect("no lie, no panic");
    assert!(
        matches!(read, Seen::OnOpen | Seen::OnRead),
        "reading the tweets of damaged packs reports it: {read:?}"
    );

    // Random flips anywhere in the file, seeded: each is reported (on open, on the read that
    // touches it, or by verify) or changes nothing read; never a silently changed tweet.
    let seed = std::env::var("BIT_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("bit flips: seed {seed} (rerun with BIT_FLIP_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = crate::common::iterations(48, 24);
    let mut seen: BTreeMap<Seen, usize> = BTreeMap::new();
    for i in 0..n {
        let at = rng.random_range(0..bytes.len());
        let bit = rng.random_range(0..8u32);
        let what = format!(
            "seed {seed}, flip {i}: bit {bit} of byte {at} of {}",
            bytes.len()
        );
        let dir = damaged_copy(&good, &format!("flip-{i}"), |b| b[at] ^= 1 << bit);
        let verify = check_damaged(cwd, &dir, &what, &good_log);
        let read = damaged_copy(&good, &format!("flip-{i}-read"), |b| b[at] ^= 1 << bit);
        let outcome =
            compare_with_source(&read, &oracle, true).unwrap_or_else(|e| panic!("{what}: {e}"));
        let outcome = match (outcome, verify) {
            (Seen::Nothing, 1) => Seen::ByVerify,
            (o, _) => o,
        };
        eprintln!("{what}: {outcome:?}");
        *seen.entry(outcome).or_default() += 1;
    }
    eprintln!("bit flips (seed {seed}): {seen:?}");
}

#[test]
fn without_its_checks_a_flipped_tweet_reads_back_changed_and_the_oracle_comparison_catches_it() {
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    // Commits of one tweet: each stored loose, its text verbatim in the file.
    let (good, _) = collected_store(cwd, 1);
    let bytes = std::fs::read(good.join(FILE_NAME)).expect("read");
    let oracle = source_tweets();

    // A deliberately altered oracle: the comparison sees one changed text.
    let mut altered = oracle.clone();
    altered[42].1.push('!');
    assert!(compare_with_source(&good, &altered, true).is_err());
    assert_eq!(
        compare_with_source(&good, &oracle, false),
        Ok(Seen::Nothing)
    );

    // Flips inside stored tweet texts (ASCII letters, a low bit, so the text stays valid
    // UTF-8): read without redb's integrity check and without re-hashing they come back as
    // changed tweets, which the comparison must catch; the store's own reads report each one.
    let seed = std::env::var("BIT_FLIP_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("targeted flips: seed {seed} (rerun with BIT_FLIP_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Texts with an ASCII letter among their first 24 bytes.
    let flippable: Vec<&[u8]> = oracle
        .iter()
        .map(|(_, t)| &t.as_bytes()[..t.len().min(24)])
        .filter(|t| t.iter().any(u8::is_ascii_alphabetic))
        .collect();
    for i in 0..crate::common::iterations(8, 4) {
        let needle = flippable[rng.random_range(0..flippable.len())];
        // Every stored copy (redb copies pages on write; stale copies are never read).
        let copies = occurrences(&bytes, needle);
        assert!(!copies.is_empty(), "the tweet's text is stored verbatim");
        let letters: Vec<usize> = (0..needle.len())
            .filter(|&p| needle[p].is_ascii_alphabetic())
            .collect();
        let off = letters[rng.random_range(0..letters.len())];
        let bit = rng.random_range(0..2u32);
        let at: Vec<usize> = copies.iter().map(|c| c + off).collect();
        let what = format!("seed {seed}, targeted flip {i}: bit {bit} of bytes {at:?}");
        let flip = |b: &mut Vec<u8>| {
            for &p in &at {
                b[p] ^= 1 << bit;
            }
        };
        let dir = damaged_copy(&good, &format!("text-{i}"), flip);
        let unchecked = compare_with_source(&dir, &oracle, false);
        assert!(
            unchecked
                .as_ref()
                .is_err_and(|e| e.contains("silently changed")),
            "{what}: without its checks the read must return a changed tweet and the \
             comparison must catch it, got {unchecked:?}"
        );
        let dir = damaged_copy(&good, &format!("text-{i}-checked"), flip);
        let checked = compare_with_source(&dir, &oracle, true);
        assert!(
            matches!(checked, Ok(Seen::OnOpen | Seen::OnRead)),
            "{what}: the store's own reads report the flip, got {checked:?}"
        );
        eprintln!("{what}: caught by the comparison when unchecked, {checked:?} when checked");
    }
}

#[test]
fn a_failed_store_write_fails_the_caller_with_context_and_restarts_the_store_and_its_dependents() {
    let key = fresh_key();
    let sink = MemorySink::new();
    let mut acked = Vec::new();
    let disk = FaultyDisk::new(3);
    actix_rt::System::new().block_on(async {
        let store = Store::with_backend(disk.clone(), "node").expect("create");
        let node = Node::builder()
            .store(StoreLocation::Open(store.clone()))
            .listen("127.0.0.1:0")
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let root = node.supervisor().clone();
        let before: Vec<(String, u64)> = root
            .which_children()
            .await
            .expect("children")
            .into_iter()
            .map(|c| (c.id.to_string(), c.generation))
            .collect();
        let stage = node.stage();
        for i in 0..5 {
            acked.push(
                stage
                    .transact(&key, vec![note(&format!("a{i}"))])
                    .await
                    .expect("ok"),
            );
        }
        let mut events = node.events();

        disk.fail_next_writes(1);
        let err = stage
            .transact(&key, vec![note("refused")])
            .await
            .expect_err("the injected failure reaches the caller");
        let chain = error_chain(&err);
        assert!(chain.contains(&key.to_string()), "names the CDVCS: {chain}");
        assert!(
            chain.contains("injected write failure"),
            "names the cause: {chain}"
        );

        // The store exits failed and is restarted; rest-for-one restarts what follows it.
        let mut store_failed = false;
        let mut restarted = Vec::new();
        while restarted.len() < 4 {
            let ev = tokio::time::timeout(T, events.recv())
                .await
                .expect("supervision events within the deadline")
                .expect("event");
            if &*ev.supervisor != root.path() {
                continue;
            }
            match ev.kind {
                EventKind::ChildExited { child, reason, .. } if child.as_str() == "store" => {
                    assert!(matches!(reason, ExitReason::Failed(_)), "{reason:?}");
                    let chain = reason.chain().join(": ");
                    assert!(chain.contains("injected"), "{chain}");
                    store_failed = true;
                }
                EventKind::ChildRestarted { child, .. } => restarted.push(child.to_string()),
                _ => {}
            }
        }
        assert!(store_failed);
        assert_eq!(restarted, ["store", "replicas", "peers", "realizers"]);
        for (id, generation) in &before {
            eventually_async(
                "every root child to run its second incarnation",
                T,
                || async {
                    let c = child(&root, id).await;
                    c.state == ChildState::Running && c.generation == generation + 1
                },
            )
            .await;
        }

        // Transacting works again (once the replica is back), on top of every acked commit.
        let mut after = None;
        let end = std::time::Instant::now() + T;
        while after.is_none() {
            match stage.transact(&key, vec![note("after")]).await {
                Ok(id) => after = Some(id),
                Err(e) => {
                    assert!(std::time::Instant::now() < end, "no recovery: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let after = after.expect("recovered");
        acked.push(after);
        let history = stage.history(&key, &after).await.expect("history");
        for id in &acked {
            assert!(history.contains(id), "acknowledged commit {id} lost");
        }
        let realizer = node.realizer("mem").expect("mem");
        eventually("the realizer to catch up", T, || {
            realizer.is_applied(&after)
        })
        .await;
        assert_eq!(
            sink.snapshot().ops.len(),
            acked.len(),
            "each op applied once"
        );
        node.shutdown().await;
    });

    // Reopened on what is durable on the disk, the store still holds every acknowledged commit.
    let durable = Store::with_backend(FaultyDisk::from_image(disk.durable_image(), 3), "reopened")
        .expect("reopen the durable image");
    actix_rt::System::new().block_on(async {
        let node = Node::builder()
            .store(StoreLocation::Open(durable))
            .start()
            .await
            .expect("reopen");
        let stage = node.stage();
        let heads = stage.heads(&key).await.expect("heads");
        assert_eq!(heads, vec![*acked.last().expect("acked")]);
        let history = stage.history(&key, &heads[0]).await.expect("history");
        assert!(acked.iter().all(|id| history.contains(id)));
        node.shutdown().await;
    });
}

/// One write of the full-disk cases: a unique value and a state record naming it.
fn tagged_batch(tag: &str) -> (WriteBatch, Id, Vec<u8>) {
    let mut batch = WriteBatch::new();
    let id = batch.put_value(format!("value {tag}").into_bytes());
    let key = format!("w/{tag}").into_bytes();
    batch.put_state(key.clone(), id.as_bytes().to_vec());
    (batch, id, key)
}

/// Whether the batch of `tag` is in `store`: `Some(true)` whole, `Some(false)` absent, `None`
/// half (its value without its record or the other way round).
fn batch_presence(store: &Store, id: &Id, key: &[u8]) -> Option<bool> {
    let value = store.get_value(id).expect("read value").is_some();
    let record = store.get_state(key).expect("read state").is_some();
    (value == record).then_some(value)
}

#[test]
fn a_full_disk_or_failing_io_fails_the_write_with_its_cause_and_the_store_resumes_by_itself() {
    let disk = FaultyDisk::new(7);
    let store = Store::with_backend(disk.clone(), "full-disk").expect("create");
    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let mut reads_failed = Vec::new();
    for i in 0..5 {
        let (b, id, key) = tagged_batch(&format!("ok-{i}"));
        store.write(&b).expect("write with space");
        acked.push((id, key));
    }
    for (fault, cause) in [
        (Fault::NoSpace, "No space left on device"),
        (Fault::WriteEio, "Input/output error"),
        (Fault::SyncEio, "Input/output error"),
    ] {
        disk.set_fault(fault);
        for attempt in 0..2 {
            let (b, id, key) = tagged_batch(&format!("{fault:?}-{attempt}"));
            let err = store
                .write(&b)
                .expect_err("a write fails while the disk fails");
            let chain = error_chain(&err);
            // The first attempt fails in the commit; later ones in the reopen the failed
            // commit asks for, which needs to write too.
            assert!(
                chain.contains("committing a write") || chain.contains("cannot reopen store"),
                "{fault:?}: the error names the operation: {chain}"
            );
            assert!(
                chain.contains(cause),
                "{fault:?}: the error names the cause: {chain}"
            );
            refused.push((id, key));
        }
        // Reads meanwhile give the right bytes or fail naming the cause; never wrong data.
        // (redb must commit its repair to reopen after a failed write, so while the disk
        // fails, reads after a failed write fail too.)
        let (id, _) = &acked[0];
        match store.get_value(id) {
            Ok(v) => assert_eq!(v, Some(b"value ok-0".to_vec())),
            Err(e) => {
                let chain = error_chain(&e);
                assert!(
                    chain.contains(cause),
                    "{fault:?}: a read names the cause: {chain}"
                );
                reads_failed.push(format!("{fault:?}"));
            }
        }
        disk.set_fault(Fault::None);
        // The store reopens by itself: the next write works, with everything acknowledged.
        let (b, id, key) = tagged_batch(&format!("after-{fault:?}"));
        store
            .write(&b)
            .expect("the store writes again once the disk does");
        acked.push((id, key));
        for (id, key) in &acked {
            assert_eq!(
                batch_presence(&store, id, key),
                Some(true),
                "after {fault:?}: acknowledged batch {} lost or half there",
                String::from_utf8_lossy(key)
            );
        }
        for (id, key) in &refused {
            assert!(
                batch_presence(&store, id, key).is_some(),
                "after {fault:?}: refused batch {} is half there",
                String::from_utf8_lossy(key)
            );
        }
    }
    // And it is all durable: cut the power and look at what survived.
    disk.cut_power_now();
    drop(store);
    let store = Store::with_backend(FaultyDisk::from_image(disk.durable_image(), 7), "recovered")
        .expect("reopen after the cut");
    for (id, key) in &acked {
        assert_eq!(batch_presence(&store, id, key), Some(true));
    }
    for (id, key) in &refused {
        assert!(batch_presence(&store, id, key).is_some());
    }
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    eprintln!("reads failed (with the cause) while the disk failed under: {reads_failed:?}");
}

#[test]
fn random_write_and_sync_failures_lose_nothing_acknowledged_and_half_apply_nothing() {
    use rand::{Rng, SeedableRng};
    let cases = crate::common::iterations(40, 16) as u64;
    let (mut acked_total, mut refused_total, mut refused_landed) = (0, 0, 0);
    for seed in 0..cases {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let disk = FaultyDisk::new(seed);
        let store = Store::with_backend(disk.clone(), "flaky").expect("create");
        let mut acked = Vec::new();
        let mut refused = Vec::new();
        for i in 0..30 {
            let fault = match rng.random_range(0..8) {
                0 => Fault::NoSpace,
                1 => Fault::WriteEio,
                2 => Fault::SyncEio,
                _ => Fault::None,
            };
            disk.set_fault(fault);
            let (b, id, key) = tagged_batch(&format!("{seed}-{i}"));
            match store.write(&b) {
                Ok(()) => acked.push((id, key)),
                Err(e) => {
                    assert_ne!(
                        fault,
                        Fault::None,
                        "seed {seed}: write {i} failed on a working disk (the store did not reopen by itself): {}",
                        error_chain(&e)
                    );
                    refused.push((id, key));
                }
            }
        }
        disk.set_fault(Fault::None);
        let (b, id, key) = tagged_batch(&format!("{seed}-last"));
        store.write(&b).unwrap_or_else(|e| {
            panic!(
                "seed {seed}: the store does not resume: {}",
                error_chain(&e)
            )
        });
        acked.push((id, key));
        disk.cut_power_now();
        drop(store);
        let store = Store::with_backend(
            FaultyDisk::from_image(disk.durable_image(), seed),
            "recovered",
        )
        .unwrap_or_else(|e| panic!("seed {seed}: reopen after the cut: {}", error_chain(&e)));
        for (id, key) in &acked {
            assert_eq!(
                batch_presence(&store, id, key),
                Some(true),
                "seed {seed}: acknowledged batch {} lost or half there",
                String::from_utf8_lossy(key)
            );
        }
        for (id, key) in &refused {
            let there = batch_presence(&store, id, key);
            assert!(
                there.is_some(),
                "seed {seed}: refused batch {} is half there",
                String::from_utf8_lossy(key)
            );
            refused_landed += usize::from(there == Some(true));
        }
        let report = store.verify().expect("verify");
        assert!(report.is_ok(), "seed {seed}: {report}");
        acked_total += acked.len();
        refused_total += refused.len();
    }
    eprintln!(
        "{cases} runs of 31 writes under random faults: {acked_total} acknowledged, all durable; {refused_total} refused, {refused_landed} of them landed whole (a failed sync), none half"
    );
}

#[test]
fn a_node_over_a_full_disk_fails_transacts_with_their_cause_and_resumes_by_itself() {
    let disk = FaultyDisk::new(11);
    let key = fresh_key();
    let sink = MemorySink::new();
    let mut acked = Vec::new();
    actix_rt::System::new().block_on(async {
        let store = Store::with_backend(disk.clone(), "node-disk").expect("create");
        let node = Node::builder()
            .store(StoreLocation::Open(store.clone()))
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let root = node.supervisor().clone();
        let stage = node.stage();
        for i in 0..5 {
            acked.push(
                stage
                    .transact(&key, vec![note(&format!("a{i}"))])
                    .await
                    .expect("ok"),
            );
        }
        let mut events = node.events();

        disk.set_fault(Fault::NoSpace);
        let err = stage
            .transact(&key, vec![note("refused")])
            .await
            .expect_err("a transact fails while the disk is full");
        let chain = error_chain(&err);
        assert!(chain.contains(&key.to_string()), "names the CDVCS: {chain}");
        assert!(
            chain.contains("committing a write"),
            "names the operation: {chain}"
        );
        assert!(
            chain.contains("No space left on device"),
            "names the cause: {chain}"
        );

        // The store actor exits failed with the cause and is restarted.
        let end = std::time::Instant::now() + T;
        let mut store_failed = false;
        let mut store_restarted = false;
        while !(store_failed && store_restarted) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            let ev = tokio::time::timeout(left, events.recv())
                .await
                .expect("the store's exit and restart within the deadline")
                .expect("event");
            if &*ev.supervisor != root.path() {
                continue;
            }
            match ev.kind {
                EventKind::ChildExited { child, reason, .. } if child.as_str() == "store" => {
                    assert!(matches!(reason, ExitReason::Failed(_)), "{reason:?}");
                    let chain = reason.chain().join(": ");
                    assert!(chain.contains("No space left on device"), "{chain}");
                    store_failed = true;
                }
                EventKind::ChildRestarted { child, .. } if child.as_str() == "store" => {
                    store_restarted = true;
                }
                _ => {}
            }
        }
        // While the disk stays full, every transact fails naming the cause (after the failed
        // commit the store must reopen, and redb's reopen commits its repair, so the replica
        // cannot even load meanwhile); the supervisors keep restarting with backoff.
        for _ in 0..5 {
            match stage.transact(&key, vec![note("still refused")]).await {
                Err(e) => {
                    let chain = error_chain(&e);
                    assert!(chain.contains("No space left on device"), "{chain}");
                }
                Ok(_) => panic!("a transact succeeded on a full disk"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // Space is back: transacting works again by itself, on top of every acked commit.
        disk.set_fault(Fault::None);
        let end = std::time::Instant::now() + T;
        let after = loop {
            match stage.transact(&key, vec![note("after")]).await {
                Ok(id) => break id,
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < end,
                        "the node did not resume: {}",
                        error_chain(&e)
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        acked.push(after);
        let history = stage.history(&key, &after).await.expect("history");
        for id in &acked {
            assert!(history.contains(id), "acknowledged commit {id} lost");
        }
        let realizer = node.realizer("mem").expect("mem");
        eventually("the realizer to catch up", T, || {
            realizer.is_applied(&after)
        })
        .await;
        let ops = sink.snapshot().ops;
        assert_eq!(
            ops.len(),
            acked.len(),
            "each acknowledged op applied once: {ops:?}"
        );
        node.shutdown().await;
    });

    // Cut the power: every acknowledged commit is durable.
    disk.cut_power_now();
    let recovered = FaultyDisk::from_image(disk.durable_image(), 11);
    actix_rt::System::new().block_on(async {
        let store = Store::with_backend(recovered, "recovered").expect("reopen after the cut");
        assert!(store.verify().expect("verify").is_ok());
        let node = Node::builder()
            .store(StoreLocation::Open(store))
            .start()
            .await
            .expect("restart");
        let stage = node.stage();
        let heads = stage.heads(&key).await.expect("heads");
        assert_eq!(heads, vec![*acked.last().expect("acked")]);
        let history = stage.history(&key, &heads[0]).await.expect("history");
        assert!(acked.iter().all(|id| history.contains(id)));
        node.shutdown().await;
    });
}
