//! A hostile relay in an A–B–C chain of real processes (DESIGN §11, signed history; issue
//! 15). The collector A (`collect --owned --listen`) lets B read; B, a raw client that peer C
//! lets write, relays A's genuine commits to C and slips hostile batches in between them: a
//! genuine commit altered and re-signed by B in A's name, one re-signed by B in its own name,
//! a commit inventing a tweet, and a genuine commit with its signature stripped. C refuses
//! each batch, names B's key and the commit, and stores nothing of it; the genuine history
//! arrives whole. An analyzer D realizes C's CDVCS into SQLite: every tweet of A's source
//! once, none invented, every one by A. Oracle: the tweet ids of the source file, parsed with
//! serde_json independently of the crate's parser.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::cli_support::{Proc, account_ops, tail};
use crate::common::committed::{CDVCS, sqlite_ops_applied, sqlite_tweet_ids, store_tweet_authors};
use crate::common::nodes::serial;
use crate::common::raw::{Got, RawClient};
use crate::common::tweets_oracle::{check_each_once, per_author, source_tweets};
use crate::common::{data_dir, free_port, run, run_json, run_ok, wait_port};
use replikativ::crdt::authorship::sign;
use replikativ::crdt::{Commit, CrdtKey, EncodedCommit, Transaction};
use replikativ::id::Id;
use replikativ::identity::Keypair;
use replikativ::protocol::message::FixedBytes;
use replikativ::protocol::{Blob, Message};
use replikativ::tweets::{decode_params, encode_params};

const T: Duration = Duration::from_secs(60);

/// The tweet B invents (no source holds this id).
const INVENTED: &str = "990000000000000001";

/// The params of the tweet B invents.
fn invented_tweet() -> Vec<u8> {
    encode_params(&serde_json::json!({
        "id": INVENTED,
        "text": "invented by the relay",
        "author_id": "6666",
        "author": {"id": "6666", "username": "mallory"},
    }))
}

/// What B received from A: the commits in the order A sent them (parents first), with their
/// signatures, and the values they name.
#[derive(Default)]
struct Relayed {
    commits: Vec<EncodedCommit>,
    values: HashMap<Id, Vec<u8>>,
    tweets: BTreeSet<String>,
}

impl Relayed {
    /// The values `commit`'s transactions name, as blobs.
    fn values_of(&self, commit: &Commit) -> Vec<Blob> {
        commit
            .transactions
            .iter()
            .map(|t| {
                let bytes = self.values.get(&t.params).expect("A sent each value");
                Blob::new(bytes.clone())
            })
            .collect()
    }
}

/// B subscribes at A and takes what A sends until it holds every tweet of `want`.
async fn receive_from_a(
    url: &str,
    b: &Keypair,
    crdt: &CrdtKey,
    want: &BTreeSet<String>,
) -> Relayed {
    let mut raw = RawClient::connect(url).await;
    raw.handshake(b).await;
    let root = Commit::root(crdt).id;
    assert!(
        raw.send(&Message::Heads {
            crdt: crdt.clone(),
            heads: vec![root],
        })
        .await
    );
    let mut got = Relayed::default();
    let end = Instant::now() + T;
    while !want.is_subset(&got.tweets) {
        let left = end.saturating_duration_since(Instant::now());
        match raw.recv(left).await {
            None => panic!(
                "B received {} of {} tweets from A",
                got.tweets.len(),
                want.len()
            ),
            Some(Got::Msg(Message::Values { values, .. })) => {
                for v in values {
                    got.values.insert(Id::of(&v.bytes.0), v.bytes.0);
                }
            }
            // Protocol 4: a commit's params come as the packs A stores them in.
            Some(Got::Msg(Message::Packs { packs, .. })) => {
                for p in packs {
                    let values =
                        replikativ::pack::decode(&p.bytes.0, replikativ::pack::MAX_PACK_BYTES)
                            .expect("A's pack decodes");
                    for v in values {
                        got.values.insert(Id::of(&v), v);
                    }
                }
            }
            Some(Got::Msg(Message::Commits {
                commits,
                signatures,
                ..
            })) => {
                for (i, blob) in commits.into_iter().enumerate() {
                    let mut c = Commit::decode(&blob.bytes.0).expect("A's commit decodes");
                    c.signature = signatures.get(i).copied().flatten().map(|s| s.0);
                    for tx in c.commit.transactions.iter().filter(|t| t.op == "add-tweet") {
                        let value = got.values.get(&tx.params).expect("values come first");
                        let tweet = decode_params(value).expect("a tweet");
                        got.tweets
                            .insert(tweet["id"].as_str().expect("id").to_owned());
                    }
                    got.commits.push(c);
                }
            }
            Some(Got::Msg(Message::Ping(n))) => {
                raw.send(&Message::Pong(n)).await;
            }
            Some(Got::Msg(Message::Error { code, message })) => {
                panic!("A refused B: {code:?} {message}")
            }
            Some(Got::Msg(_)) => {}
            Some(other) => panic!("A ended B's subscription: {other:?}"),
        }
    }
    got
}

/// B's connection to C, subscribed to `crdt` (C answers with its heads).
async fn open_at_c(url: &str, b: &Keypair, crdt: &CrdtKey) -> RawClient {
    let mut raw = RawClient::connect(url).await;
    raw.handshake(b).await;
    assert!(
        raw.send(&Message::Heads {
            crdt: crdt.clone(),
            heads: vec![Commit::root(crdt).id],
        })
        .await
    );
    raw.expect(T, |m| matches!(m, Message::Heads { .. })).await;
    raw
}

/// Sends `commits` (parents first) with their values as one batch.
async fn push(raw: &mut RawClient, crdt: &CrdtKey, values: Vec<Blob>, commits: &[EncodedCommit]) {
    assert!(
        raw.send(&Message::Values {
            crdt: crdt.clone(),
            values,
        })
        .await
    );
    assert!(
        raw.send(&Message::Commits {
            crdt: crdt.clone(),
            commits: commits.iter().map(|c| Blob::new(c.bytes.clone())).collect(),
            signatures: commits
                .iter()
                .map(|c| c.signature.map(FixedBytes))
                .collect(),
        })
        .await
    );
}

/// Relays genuine commits and waits until C has applied them: C answers a `Ping` after the
/// batches before it are durable.
async fn relay(raw: &mut RawClient, crdt: &CrdtKey, got: &Relayed, commits: &[EncodedCommit]) {
    let values = commits
        .iter()
        .flat_map(|c| got.values_of(&c.commit))
        .collect();
    push(raw, crdt, values, commits).await;
    let n = rand::random::<u64>();
    assert!(raw.send(&Message::Ping(n)).await);
    raw.expect(T, |m| *m == Message::Pong(n)).await;
}

/// The hostile batches B slips in, and what C's refusal must say.
#[derive(Clone, Copy, Debug)]
enum Hostile {
    /// The next genuine commit with another stored tweet's params, still naming A, signed by B.
    ResignedInAsName,
    /// The next genuine commit naming B as its author, signed by B (B was never granted).
    ClaimedByB,
    /// A new commit adding a tweet nobody collected, by B, signed by B.
    Invented,
    /// The next genuine commit without its signature.
    Stripped,
}

impl Hostile {
    fn why(self) -> &'static str {
        match self {
            Hostile::ResignedInAsName => "signature is not",
            Hostile::ClaimedByB | Hostile::Invented => "not a writer",
            Hostile::Stripped => "no signature",
        }
    }

    /// The hostile commit, given that C holds `got.commits[..next]`, and its values.
    fn make(self, got: &Relayed, next: usize, b: &Keypair) -> (EncodedCommit, Vec<Blob>) {
        let genuine = &got.commits[next];
        let mut commit = genuine.commit.clone();
        let mut values = got.values_of(&commit);
        match self {
            Hostile::ResignedInAsName => {
                // A tweet C already holds, from the first commit: were this accepted, it
                // would be applied twice.
                let other = got.commits[0].commit.transactions[0].params;
                assert_ne!(commit.transactions[0].params, other);
                commit.transactions[0].params = other;
                values = got.values_of(&commit);
            }
            Hostile::ClaimedByB => commit.author = b.public().to_string(),
            Hostile::Invented => {
                let bytes = invented_tweet();
                commit = Commit {
                    parents: vec![got.commits[next - 1].id],
                    transactions: vec![Transaction {
                        op: "add-tweet".into(),
                        params: Id::of(&bytes),
                    }],
                    author: b.public().to_string(),
                    ts: genuine.commit.ts,
                };
                values = vec![Blob::new(bytes)];
            }
            Hostile::Stripped => {
                let mut stripped = genuine.clone();
                stripped.signature = None;
                return (stripped, values);
            }
        }
        let mut forged = commit.encode();
        forged.signature = Some(sign(b, &forged.id));
        (forged, values)
    }
}

/// B relays `got` to C in segments, a hostile batch between two segments; each hostile batch
/// is refused (C closes the connection, B dials again). Returns the refused commit ids.
async fn relay_with_forgeries(
    url: &str,
    b: &Keypair,
    crdt: &CrdtKey,
    got: &Relayed,
) -> Vec<(Hostile, Id)> {
    let kinds = [
        Hostile::ResignedInAsName,
        Hostile::ClaimedByB,
        Hostile::Invented,
        Hostile::Stripped,
    ];
    let n = got.commits.len();
    let segments = kinds.len() + 1;
    assert!(
        n >= segments,
        "A made {n} commits; the test needs {segments}"
    );
    let mut raw = open_at_c(url, b, crdt).await;
    let mut sent = 0;
    let mut refused = Vec::new();
    for (k, kind) in kinds.into_iter().enumerate() {
        let upto = (k + 1) * n / segments;
        relay(&mut raw, crdt, got, &got.commits[sent..upto]).await;
        sent = upto;
        let (forged, values) = kind.make(got, sent, b);
        push(&mut raw, crdt, values, std::slice::from_ref(&forged)).await;
        let (error, reason) = raw.until_closed(T).await;
        let told = error.map(|(_, m)| m).unwrap_or(reason);
        assert!(
            told.contains(kind.why()) && told.contains(&forged.id.to_string()),
            "{kind:?}: C's refusal names the commit and why: {told}"
        );
        refused.push((kind, forged.id));
        raw = open_at_c(url, b, crdt).await;
    }
    relay(&mut raw, crdt, got, &got.commits[sent..]).await;
    refused
}

/// The words of `line` as arguments (no argument here holds a space).
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn last_line(out: &str) -> String {
    out.lines().last().unwrap_or_default().to_owned()
}

/// `tweets.commit_author` of every row of a realized SQLite file.
fn commit_authors(db: &Path) -> BTreeSet<Option<String>> {
    let conn = rusqlite::Connection::open(db).expect("open sqlite");
    let mut stmt = conn
        .prepare("SELECT DISTINCT commit_author FROM tweets")
        .expect("tweets.commit_author");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

#[actix_rt::test]
async fn a_relay_that_forges_between_genuine_commits_is_refused_and_c_realizes_only_a() {
    let _serial = serial().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let source = data_dir().join("flat.jsonl");
    let lines: Vec<Vec<u8>> = std::fs::read(&source)
        .expect("source")
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    let oracle: BTreeMap<String, String> = source_tweets(&lines);
    let want: BTreeSet<String> = oracle.keys().cloned().collect();
    assert!(!want.contains(INVENTED));

    let owner = last_line(&run_ok(&["keygen", "--out", "a.pem"], d));
    let reader = last_line(&run_ok(&["keygen", "--out", "d.pem"], d));
    let b = Keypair::generate().expect("B's key");
    let b_key = b.public().to_string();
    let crdt = CrdtKey::new(owner.clone(), CDVCS.parse().expect("uuid"));
    let (pa, pc) = (free_port(), free_port());
    let (la, lc) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pc}"));
    // The source is copied beside the stores: every argument below is one word.
    std::fs::copy(&source, d.join("a.jsonl")).expect("copy the source");
    let mut a = Proc::spawn(
        &words(&format!(
            "collect --owned --key a.pem --store a --source a.jsonl --listen {la} --follow \
             --batch 7 --flush-ms 20 --allow-read {b_key}"
        )),
        d,
        "a.log",
    );
    let mut c = Proc::spawn(
        &words(&format!(
            "peer --store c --listen {lc} --allow-write {b_key} --allow-read {reader}"
        )),
        d,
        "c.log",
    );
    wait_port(pa, T);
    wait_port(pc, T);

    let got = receive_from_a(&format!("ws://{la}/"), &b, &crdt, &want).await;
    let url_c = format!("ws://{lc}/");
    let refused = relay_with_forgeries(&url_c, &b, &crdt, &got).await;

    // D realizes what C holds.
    let out = run(
        &words(&format!(
            "analyze --store d --connect {url_c} --sqlite d.sqlite --user {owner} --key d.pem \
             --timeout 30"
        )),
        d,
    );
    assert!(
        out.status.success(),
        "analyze from C: {}\nc.log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&d.join("c.log"))
    );
    c.terminate_ok("peer C", &d.join("c.log"));
    let db = d.join("d.sqlite");
    a.terminate_ok("collector A", &d.join("a.log"));

    // D's SQLite: every genuine tweet once, the invented one nowhere, all by A.
    let realized: BTreeMap<String, u64> = sqlite_tweet_ids(&db)
        .into_iter()
        .map(|id| (id, 1))
        .collect();
    if let Err(e) = check_each_once(&want, &realized) {
        panic!("D's SQLite: {e}");
    }
    assert!(!realized.contains_key(INVENTED));
    assert_eq!(sqlite_ops_applied(&db), want.len() as u64, "each op once");
    assert_eq!(account_ops(&db), per_author(&oracle), "no op applied twice");
    assert_eq!(commit_authors(&db), BTreeSet::from([Some(owner.clone())]));

    // C's store: A's history exactly, verified; nothing of a refused batch.
    run_ok(&["verify", "--store", "c"], d);
    let log_c = run_json(&["log", "--store", "c", "--user", &owner], d);
    let log_a = run_json(&["log", "--store", "a", "--user", &owner], d);
    assert_eq!(
        log_c["authors"],
        serde_json::json!({ owner.clone(): want.len() })
    );
    assert_eq!(log_c["grants"], 0);
    assert_eq!(log_c["heads"], log_a["heads"], "C holds A's history");
    let held = store_tweet_authors(&d.join("c"), &owner);
    let counts: BTreeMap<String, u64> = held
        .iter()
        .map(|(id, by)| (id.clone(), by.len() as u64))
        .collect();
    if let Err(e) = check_each_once(&want, &counts) {
        panic!("C's store: {e}");
    }
    assert!(held.values().flatten().all(|by| *by == owner), "{held:?}");
    {
        let store = replikativ::store::Store::open(&d.join("c")).expect("open C's store");
        assert!(
            store
                .get_value(&Id::of(&invented_tweet()))
                .expect("read")
                .is_none(),
            "the invented tweet"
        );
        for (kind, id) in &refused {
            let stored = store.get_value(id).expect("read").is_some();
            // The stripped commit is genuine: it was relayed again, signed, after the refusal.
            assert_eq!(stored, matches!(kind, Hostile::Stripped), "{kind:?} {id}");
        }
    }

    eprintln!(
        "relay forgery: {} genuine commits relayed, {} hostile batches refused",
        got.commits.len(),
        refused.len()
    );

    // C's log names B's key and the commit of each refused batch.
    let log = std::fs::read_to_string(d.join("c.log")).expect("c.log");
    for (kind, id) in &refused {
        let id = id.to_string();
        assert!(
            log.lines().any(|l| l.contains(&id) && l.contains(&b_key)),
            "{kind:?}: no line of C's log names {b_key} and {id}:\n{}",
            tail(&d.join("c.log"))
        );
    }
}
