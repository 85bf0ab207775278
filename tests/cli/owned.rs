//! Owned CDVCSs from the command line (DESIGN §11): `collect --owned`, `grant`, a second
//! writer admitted by a grant and refused after a revoke, judged before the source is read.

use std::path::Path;

use crate::common::cli_support::arg;
use crate::common::*;
use replikativ::crdt::CrdtKey;

fn last_line(out: &str) -> String {
    out.lines().last().unwrap_or_default().to_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn an_owned_cdvcs_takes_only_its_owner_and_the_keys_it_granted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let first = data_dir().join("flat.jsonl");
    let second = data_dir().join("kpop.jsonl");
    // The owner collects into the CDVCS its key owns.
    run_ok(
        &[
            "collect",
            "--owned",
            "--store",
            "a",
            "--source",
            arg(&first),
        ],
        cwd,
    );
    let owner = last_line(&run_ok(&["id", "--store", "a"], cwd));
    let log = run_json(&["log", "--store", "a", "--user", &owner], cwd);
    let by_owner = log["transactions"].as_u64().expect("transactions");
    assert!(by_owner > 0, "{log}");
    assert_eq!(
        log["authors"],
        serde_json::json!({ owner.clone(): by_owner })
    );

    // Another key may not write it: refused before the source is read.
    let writer = last_line(&run_ok(&["keygen", "--out", "b.pem"], cwd));
    let refused = run(
        &[
            "collect",
            "--store",
            "b",
            "--user",
            &owner,
            "--key",
            "b.pem",
            "--source",
            arg(&second),
        ],
        cwd,
    );
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("may not write") && why.contains("grant"),
        "{why}"
    );

    // Only the owner grants.
    let by_other = run(
        &[
            "grant", "--store", "a", "--user", &owner, "--write", &writer, "--key", "b.pem",
        ],
        cwd,
    );
    assert_eq!(by_other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&by_other.stderr).contains("only the owner"));
    run_ok(
        &[
            "grant", "--store", "a", "--user", &owner, "--write", &writer,
        ],
        cwd,
    );
    assert_eq!(
        run_json(&["log", "--store", "a", "--user", &owner], cwd)["grants"],
        1
    );
    run_ok(&["verify", "--store", "a"], cwd);

    // With the owner's history (grant included), the granted key writes; its commits are its
    // own.
    copy_dir(&cwd.join("a"), &cwd.join("b"));
    run_ok(
        &[
            "collect",
            "--store",
            "b",
            "--user",
            &owner,
            "--key",
            "b.pem",
            "--source",
            arg(&second),
        ],
        cwd,
    );
    let log = run_json(&["log", "--store", "b", "--user", &owner], cwd);
    let total = log["transactions"].as_u64().expect("transactions");
    assert!(total > by_owner, "{log}");
    assert_eq!(
        log["authors"],
        serde_json::json!({ owner.clone(): by_owner, writer.clone(): total - by_owner })
    );

    // Revoked: a store with the revoke refuses the key again.
    run_ok(
        &[
            "grant", "--store", "a", "--user", &owner, "--revoke", &writer,
        ],
        cwd,
    );
    copy_dir(&cwd.join("a"), &cwd.join("c"));
    let after = run(
        &[
            "collect",
            "--store",
            "c",
            "--user",
            &owner,
            "--key",
            "b.pem",
            "--source",
            arg(&second),
        ],
        cwd,
    );
    assert_eq!(after.status.code(), Some(1), "revoked");
    assert_eq!(
        run_json(&["log", "--store", "a", "--user", &owner], cwd)["grants"],
        2
    );

    // The fork case: `b` wrote on a branch forked before the revoke. Its commits are valid by
    // the rule (decided from ancestors only), so `a` accepts them when they meet — and `log`
    // and `verify` flag each one as concurrent with the revoke.
    let before_sync = run_json(&["log", "--store", "a", "--user", &owner], cwd);
    assert_eq!(before_sync["concurrent_with_revoke"], serde_json::json!([]));
    {
        use replikativ::identity::{KeyFiles as _, Keypair};
        let crdt = replikativ::crdt::CrdtKey::new(
            owner.as_str(),
            replikativ::cli::args::DEFAULT_CDVCS.parse().expect("uuid"),
        );
        // The stores were copied with one node.key: each node runs on a key of its own.
        let a_key = Keypair::generate().expect("key");
        let b_key = Keypair::read(&cwd.join("b.pem")).expect("key");
        crate::common::exchange::exchange(&cwd.join("a"), a_key, &cwd.join("b"), b_key, &crdt);
    }
    let log = run_json(&["log", "--store", "a", "--user", &owner], cwd);
    let flagged = log["concurrent_with_revoke"].as_array().expect("flags");
    let writers_commits = commits_by(&cwd.join("b"), &owner, &writer);
    assert!(!writers_commits.is_empty());
    let mut named: Vec<String> = flagged
        .iter()
        .map(|f| {
            assert_eq!(f["author"], writer.as_str(), "{f}");
            f["commit"].as_str().expect("commit").to_owned()
        })
        .collect();
    named.sort();
    assert_eq!(named, writers_commits, "exactly the writer's commits of b");
    assert_eq!(log["authors"][&writer], total - by_owner, "{log}");
    let verified = run_ok(&["verify", "--store", "a"], cwd);
    assert_eq!(
        verified.matches("concurrent with revoke of").count(),
        writers_commits.len(),
        "{verified}"
    );
    // Where the branches meet the revoke holds: the writer may not write on.
    let on_top = run(
        &[
            "collect",
            "--store",
            "a",
            "--user",
            &owner,
            "--key",
            "b.pem",
            "--source",
            arg(&second),
        ],
        cwd,
    );
    assert_eq!(on_top.status.code(), Some(1), "revoked after the join");
}

/// The hex ids of the commits in `store`'s owned CDVCS (default id) signed by `author`.
fn commits_by(store: &Path, owner: &str, author: &str) -> Vec<String> {
    use replikativ::crdt::authorship::{Authorship, authorship};
    use replikativ::store::{Store, cdvcs};
    let store = Store::open(store).expect("open");
    let key = CrdtKey::new(
        owner,
        replikativ::cli::args::DEFAULT_CDVCS.parse().expect("uuid"),
    );
    let state = cdvcs::load(&store, &key).expect("load").expect("held");
    let mut ids: Vec<String> = state
        .entries()
        .filter_map(|(id, _)| {
            let c = cdvcs::load_commit_record(&store, &id).expect("read")?;
            let who = authorship(&key, &id, &c.commit, c.signature.as_ref());
            matches!(who, Ok(Authorship::Signed(k)) if k.to_string() == author).then(|| id.to_hex())
        })
        .collect();
    ids.sort();
    ids
}

/// A store `a` in `cwd` collected by `collect --owned` from `flat.jsonl` (in commits of 50),
/// which `verify` passes: the store (open), the owned CDVCS and its head.
fn owned_store(cwd: &Path) -> (replikativ::store::Store, CrdtKey, replikativ::Id) {
    use replikativ::store::{Store, graph};
    let source = data_dir().join("flat.jsonl");
    run_ok(
        &[
            "collect",
            "--owned",
            "--batch",
            "50",
            "--store",
            "a",
            "--source",
            arg(&source),
        ],
        cwd,
    );
    run_ok(&["verify", "--store", "a"], cwd);
    let owner = last_line(&run_ok(&["id", "--store", "a"], cwd));
    let key = CrdtKey::new(
        owner,
        replikativ::cli::args::DEFAULT_CDVCS.parse().expect("uuid"),
    );
    let store = Store::open(&cwd.join("a")).expect("open");
    let state = graph::open(&store, &key).expect("open").expect("held");
    let head = *state.heads().iter().next().expect("a head");
    (store, key, head)
}

/// `verify` on the store `a` in `cwd`: exit 1, naming `what` in its report.
fn verify_names(cwd: &Path, what: &str) {
    let out = run(&["verify", "--store", "a"], cwd);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(what),
        "verify does not name {what:?}:\n{said}"
    );
}

/// `verify` checks every stored signature: a signature record replaced by another key's
/// signature of the same commit is named.
#[test]
fn verify_names_a_commit_whose_stored_signature_is_not_its_authors() {
    use replikativ::crdt::authorship::sign;
    use replikativ::identity::Keypair;
    use replikativ::store::{WriteBatch, keys};

    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let (store, _, head) = owned_store(cwd);
    let mut batch = WriteBatch::new();
    let forged = sign(&Keypair::from_seed([77; 32]), &head);
    batch.put_state(keys::commit_signature(&head), forged.to_vec());
    store.write(&batch).expect("write");
    drop(store);
    verify_names(cwd, &format!("commit {head}: its signature is not"));
}

/// A collector of an owned CDVCS stores the writer rule's record of each commit (so a later
/// start judges from them, not from the whole history); `verify` judges the history again
/// and names a stored record that differs — here one that would grant a stranger.
#[test]
fn verify_names_a_writer_record_that_differs_from_the_history() {
    use replikativ::crdt::authorship::{AccessCommit, WriterRecord, key_id};
    use replikativ::identity::Keypair;
    use replikativ::store::{WriteBatch, keys};

    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let (store, key, head) = owned_store(cwd);
    let record = keys::writer_record(&key.user, &key.id, &head);
    let stored = store.get_state(&record).expect("read");
    assert_eq!(
        stored.map(|raw| WriterRecord::decode(&raw).expect("decodes")),
        Some(WriterRecord::default()),
        "the collector stored the head's record: no grant before it"
    );
    let stranger = Keypair::from_seed([78; 32]).public();
    let forged = WriterRecord {
        latest: vec![head],
        access: Some(AccessCommit {
            grants: vec![key_id(&stranger)],
            ..AccessCommit::default()
        }),
    };
    let mut batch = WriteBatch::new();
    batch.put_state(record, forged.encode());
    store.write(&batch).expect("write");
    drop(store);
    verify_names(cwd, &format!("the writer record of commit {head} differs"));
}

/// `grant --connect`: the owner grants and revokes while its collector keeps running. The
/// collector runs on the owner's key itself, so the grant connects with a one-time key (a
/// loopback listener without rules admits it) and signs with the owner's key.
#[test]
fn a_grant_reaches_a_live_collector_without_stopping_it() {
    use crate::common::cli_support::{Proc, tail};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let source = data_dir().join("flat.jsonl");
    let owner = last_line(&run_ok(&["keygen", "--out", "owner.pem"], cwd));
    let writer = last_line(&run_ok(&["keygen", "--out", "w.pem"], cwd));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("ws://{listen}/");
    let log = cwd.join("collector.log");
    let mut collector = Proc::spawn(
        &[
            "collect",
            "--owned",
            "--key",
            "owner.pem",
            "--store",
            "a",
            "--source",
            arg(&source),
            "--follow",
            "--flush-ms",
            "50",
            "--listen",
            &listen,
        ],
        cwd,
        "collector.log",
    );
    wait_port(port, Duration::from_secs(30));
    let grant = |change: &str, key: &str| {
        run(
            &[
                "grant",
                "--connect",
                &url,
                "--user",
                &owner,
                change,
                &writer,
                "--key",
                key,
                "--timeout",
                "20",
            ],
            cwd,
        )
    };
    // A key that is not the owner's is refused before anything is sent.
    let by_other = grant("--write", "w.pem");
    assert_eq!(by_other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&by_other.stderr).contains("only the owner"));
    // The collector commits the file's tweets soon after it starts; until then there is
    // nothing to grant on.
    let deadline = Instant::now() + Duration::from_secs(60);
    let granted = loop {
        let out = grant("--write", "owner.pem");
        if out.status.success() {
            break out;
        }
        let why = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(why.contains("holds no commits"), "{why}");
        assert!(Instant::now() < deadline, "no commits: {}", tail(&log));
        std::thread::sleep(Duration::from_millis(100));
    };
    let said = String::from_utf8_lossy(&granted.stdout);
    assert!(said.contains("granted write access"), "{said}");
    assert!(
        String::from_utf8_lossy(&granted.stderr).contains("one-time key"),
        "{}",
        String::from_utf8_lossy(&granted.stderr)
    );
    let grant_commit = last_line(&said)
        .rsplit(' ')
        .next()
        .expect("commit id")
        .to_owned();
    let revoked = grant("--revoke", "owner.pem");
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    collector.terminate_ok("collector", &log);
    let log = run_json(&["log", "--store", "a", "--user", &owner], cwd);
    assert_eq!(log["grants"], 2, "{log}");
    assert_eq!(
        log["authors"],
        serde_json::json!({ owner.clone(): log["transactions"].clone() })
    );
    let history = commits_by(&cwd.join("a"), &owner, &owner);
    assert!(history.contains(&grant_commit), "{grant_commit} stored");
    run_ok(&["verify", "--store", "a"], cwd);
}
