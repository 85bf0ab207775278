//! `replikativ peer --mirror` with real processes: a mirror catches up every CDVCS of a node
//! holding many over one connection, and when the node comes back with new commits in a few
//! CDVCSs, the mirror's reconnect carries those and a few digests, not one message per CDVCS;
//! when it comes back with nothing new, one digest each way.
//! The oracle is the set of CDVCSs and heads this test wrote into the holder's store.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use replikativ::crdt::{Cdvcs, CrdtKey, Transaction};
use replikativ::id::Id;
use replikativ::identity::Keypair;
use replikativ::store::{Store, WriteBatch, keys};
use uuid::Uuid;

use crate::common::cli_support::{Proc, tail};
use crate::common::*;

const COMMITS: usize = 10;

fn key_of(i: usize) -> CrdtKey {
    CrdtKey::new("mail:mirror@test", Uuid::from_u128(0x3000 + i as u128))
}

/// What the test wrote: each CDVCS's state (to add commits later) and its signer.
struct Written {
    states: BTreeMap<CrdtKey, Cdvcs>,
    signer: Keypair,
}

impl Written {
    /// The oracle: every CDVCS with its heads, sorted.
    fn heads(&self) -> BTreeMap<CrdtKey, Vec<Id>> {
        self.states
            .iter()
            .map(|(k, s)| (k.clone(), s.heads().iter().copied().collect()))
            .collect()
    }

    /// Appends `n` signed one-tweet commits to `key` in the store of `dir` (no node runs
    /// on it); answers the bytes written (commit and params).
    fn commit(&mut self, dir: &Path, key: &CrdtKey, n: usize, tag: &str) -> usize {
        let store = Store::open(dir).expect("open the holder's store");
        let state = self.states.get_mut(key).expect("written CDVCS");
        let mut batch = WriteBatch::new();
        let author = self.signer.public().to_string();
        let mut bytes = 0;
        for c in 0..n {
            let params = replikativ::tweets::encode_params(
                &serde_json::json!({"id": format!("{tag}-{c}"), "text": format!("{tag} {c}")}),
            );
            bytes += params.len();
            let tx = Transaction {
                op: replikativ::tweets::ADD_TWEET.into(),
                params: batch.put_value(params),
            };
            let (commit, op) = state
                .prepare_commit(&author, c as i64, vec![tx])
                .expect("prepare");
            let commit = commit.signed(&self.signer);
            bytes += commit.bytes.len() + 64;
            batch.put_value(commit.bytes.clone());
            batch.put_state(
                keys::graph_entry(&key.user, &key.id, &commit.id),
                rmp_serde::to_vec(&commit.commit.parents).expect("encode"),
            );
            if let Some(signature) = &commit.signature {
                batch.put_state(keys::commit_signature(&commit.id), signature.to_vec());
            }
            state.downstream(&op).expect("apply");
        }
        let heads: Vec<Id> = state.heads().iter().copied().collect();
        batch.put_state(
            keys::heads(&key.user, &key.id),
            rmp_serde::to_vec(&heads).expect("encode"),
        );
        store.write(&batch).expect("write commits");
        bytes
    }
}

/// Writes `n` CDVCSs of [`COMMITS`] signed commits each into a fresh store in `dir`.
fn write_holder(dir: &Path, n: usize) -> Written {
    let signer = Keypair::generate().expect("a key");
    let mut written = Written {
        states: BTreeMap::new(),
        signer,
    };
    {
        let store = Store::open(dir).expect("open store");
        let mut batch = WriteBatch::new();
        for i in 0..n {
            let k = key_of(i);
            let (state, root) = Cdvcs::new(&k);
            batch.put_value(root.bytes.clone());
            batch.put_state(
                keys::graph_entry(&k.user, &k.id, &root.id),
                rmp_serde::to_vec(&Vec::<Id>::new()).expect("encode"),
            );
            batch.put_state(keys::meta(&k.user, &k.id), b"cdvcs".to_vec());
            batch.put_state(
                keys::heads(&k.user, &k.id),
                rmp_serde::to_vec(&vec![root.id]).expect("encode"),
            );
            written.states.insert(k, state);
        }
        store.write(&batch).expect("write roots");
    }
    let all: Vec<CrdtKey> = written.states.keys().cloned().collect();
    for (i, k) in all.iter().enumerate() {
        written.commit(dir, k, COMMITS, &format!("t{i}"));
    }
    written
}

/// Every CDVCS in `status --json` with its heads, sorted (hex).
fn status_heads(cwd: &Path, url: &str) -> Option<BTreeMap<String, Vec<String>>> {
    let out = run(&["status", url, "--json"], cwd);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    let mut map = BTreeMap::new();
    for c in json["cdvcs"].as_array()? {
        let mut heads: Vec<String> = c["heads"]
            .as_array()?
            .iter()
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect();
        heads.sort();
        map.insert(
            format!("{}/{}", c["user"].as_str()?, c["id"].as_str()?),
            heads,
        );
    }
    Some(map)
}

fn hex(oracle: &BTreeMap<CrdtKey, Vec<Id>>) -> BTreeMap<String, Vec<String>> {
    oracle
        .iter()
        .map(|(k, h)| {
            let mut h: Vec<String> = h.iter().map(Id::to_hex).collect();
            h.sort();
            (format!("{}/{}", k.user, k.id), h)
        })
        .collect()
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Frame bytes (in, out) of the dialled connection the node at `url` admitted at or after
/// `since_ms`, from `status --json`.
fn dialled_bytes(cwd: &Path, url: &str, since_ms: i64) -> Option<(u64, u64)> {
    let out = run(&["status", url, "--json"], cwd);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    json["connections"].as_array()?.iter().find_map(|c| {
        let fresh = c["dialled"].as_bool()? && c["since_ms"].as_i64()? >= since_ms;
        fresh.then(|| Some((c["bytes_in"].as_u64()?, c["bytes_out"].as_u64()?)))?
    })
}

/// Websocket payload the node at `listen` sent and received, from its `/metrics`.
fn wire_bytes(listen: &str) -> f64 {
    let (code, text) = http::get(listen.parse().expect("addr"), "/metrics", None);
    assert_eq!(code, 200, "{text}");
    let m = |s| http::metric(&text, s, None).unwrap_or(0.0);
    m("replikativ_bytes_sent_total") + m("replikativ_bytes_received_total")
}

/// The mirror's stored CDVCSs with their heads, read once it stopped.
fn stored(dir: &Path) -> BTreeMap<CrdtKey, Vec<Id>> {
    let store = Store::open(dir).expect("open the mirror's store");
    let mut out = BTreeMap::new();
    for k in store.list_crdts().expect("list") {
        let raw = store
            .get_state(&keys::heads(&k.user, &k.id))
            .expect("read heads")
            .expect("heads of a listed CDVCS");
        let mut heads: Vec<Id> = rmp_serde::from_slice(&raw).expect("decode heads");
        heads.sort();
        out.insert(k, heads);
    }
    out
}

#[test]
fn a_mirror_catches_up_every_cdvcs_and_a_reconnect_carries_only_what_changed() {
    let n = iterations(1_000, 300);
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let help = run_ok(&["peer", "--help"], d);
    assert!(help.contains("--mirror"), "{help}");

    let holder_dir = d.join("holder");
    let mut written = write_holder(&holder_dir, n);
    let (ph, pm) = (free_port(), free_port());
    let (listen_h, listen_m) = (format!("127.0.0.1:{ph}"), format!("127.0.0.1:{pm}"));
    let url_h = format!("ws://{listen_h}/");
    let url_m = format!("ws://{listen_m}/");
    let holder_args = ["peer", "--store", "holder", "--listen", &listen_h];
    let mut holder = Proc::spawn(&holder_args, d, "holder.log");
    wait_port(ph, Duration::from_secs(30));
    let mirror_args = [
        "peer",
        "--store",
        "mirror",
        "--listen",
        &listen_m,
        "--connect",
        &url_h,
        "--mirror",
    ];
    let mut mirror = Proc::spawn(&mirror_args, d, "mirror.log");
    wait_port(pm, Duration::from_secs(30));

    let want = hex(&written.heads());
    let caught_up = wait::periodic_check(
        || status_heads(d, &url_m).as_ref() == Some(&want),
        Duration::from_secs(600),
    );
    assert!(
        caught_up,
        "the mirror did not catch up {n} CDVCSs; mirror log:\n{}",
        tail(&d.join("mirror.log"))
    );

    // The holder stops; while it is down a few CDVCSs get new commits.
    holder.terminate_ok("the holder", &d.join("holder.log"));
    let before = wire_bytes(&listen_m);
    let changed = [key_of(1), key_of(n / 2), key_of(n - 1)];
    let mut payload = 0;
    for (i, k) in changed.iter().enumerate() {
        payload += written.commit(&holder_dir, k, 2, &format!("new{i}"));
    }
    let mut holder = Proc::spawn(&holder_args, d, "holder2.log");
    wait_port(ph, Duration::from_secs(30));
    let want = hex(&written.heads());
    let level = wait::periodic_check(
        || status_heads(d, &url_m).as_ref() == Some(&want),
        Duration::from_secs(300),
    );
    assert!(
        level,
        "the mirror did not get the new commits; mirror log:\n{}",
        tail(&d.join("mirror.log"))
    );
    let reconnect = wire_bytes(&listen_m) - before;
    eprintln!(
        "reconnect after changes in 3 of {n} CDVCSs: {reconnect} bytes ({payload} of commits)"
    );
    // One `Heads` per CDVCS would alone cost about 90 bytes each way per CDVCS.
    let per_cdvcs_listing = 2.0 * 90.0 * n as f64;
    let bound = payload as f64 + 4_000.0 * changed.len() as f64 + 2_000.0;
    assert!(
        reconnect <= bound && reconnect < per_cdvcs_listing,
        "the reconnect cost {reconnect} bytes for {} changed CDVCSs of {n} ({payload} bytes of \
         commits); bound {bound}",
        changed.len()
    );

    // The holder restarts with nothing new: the mirror's reconnect is the digest-only
    // exchange, counted on its new connection from its admission (one root `Digests` each
    // way; the handshake before it is not counted there).
    holder.terminate_ok("the holder", &d.join("holder2.log"));
    let restart_ms = now_ms();
    let mut holder = Proc::spawn(&holder_args, d, "holder3.log");
    wait_port(ph, Duration::from_secs(30));
    let mut last = None;
    let settled = wait::periodic_check(
        || {
            // Settled: both directions carried frames and nothing more came for 0.5 s.
            let now = dialled_bytes(d, &url_m, restart_ms).filter(|(i, o)| *i > 0 && *o > 0);
            let same = now.is_some() && now == last.map(|(b, _)| b);
            let quiet = last.is_some_and(|(_, at): (_, std::time::Instant)| {
                at.elapsed() >= Duration::from_millis(500)
            });
            if !same {
                last = now.map(|b| (b, std::time::Instant::now()));
            }
            same && quiet
        },
        Duration::from_secs(120),
    );
    assert!(
        settled,
        "the mirror did not reconnect to the restarted holder; mirror log:\n{}",
        tail(&d.join("mirror.log"))
    );
    let (bytes_in, bytes_out) = last.map(|(b, _)| b).expect("settled");
    eprintln!(
        "reconnect to the restarted holder, nothing new, {n} CDVCSs: {bytes_in} bytes in, {bytes_out} out"
    );
    assert!(
        bytes_in + bytes_out <= 2_048,
        "a reconnect with nothing new cost {bytes_in} + {bytes_out} bytes for {n} CDVCSs"
    );

    mirror.terminate_ok("the mirror", &d.join("mirror.log"));
    holder.terminate_ok("the holder", &d.join("holder3.log"));
    let mut oracle = written.heads();
    for heads in oracle.values_mut() {
        heads.sort();
    }
    assert_eq!(stored(&d.join("mirror")), oracle, "the mirror's store");
}

/// A plain peer (no --mirror) dialling a node that offers more CDVCSs than its
/// --max-subscriptions takes that many, declines the rest with a warning saying what to do
/// (both flags named) and keeps what it took in sync, also across a restart of the holder
/// (its redials take no more); with a limit above the count it takes them all.
#[test]
fn a_plain_peer_over_its_subscription_limit_takes_that_many_and_is_told_what_to_do() {
    let n = 12;
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let help = run_ok(&["peer", "--help"], d);
    assert!(help.contains("--max-subscriptions"), "{help}");
    let holder_dir = d.join("holder");
    let mut written = write_holder(&holder_dir, n);
    let ph = free_port();
    let listen_h = format!("127.0.0.1:{ph}");
    let url_h = format!("ws://{listen_h}/");
    let holder_args = ["peer", "--store", "holder", "--listen", &listen_h];
    let mut holder = Proc::spawn(&holder_args, d, "holder.log");
    wait_port(ph, Duration::from_secs(30));

    let pp = free_port();
    let listen_p = format!("127.0.0.1:{pp}");
    let url_p = format!("ws://{listen_p}/");
    let plain_args = [
        "peer",
        "--store",
        "plain",
        "--listen",
        &listen_p,
        "--connect",
        &url_h,
        "--max-subscriptions",
        "5",
    ];
    let mut plain = Proc::spawn(&plain_args, d, "plain.log");
    wait_port(pp, Duration::from_secs(30));
    let log = d.join("plain.log");
    // Five CDVCSs, each at the holder's heads (of those it wrote).
    let url = url_p.clone();
    let five = |written: &Written| {
        let want = hex(&written.heads());
        let url = url.clone();
        move || {
            status_heads(d, &url).is_some_and(|have| {
                have.len() == 5 && have.iter().all(|(k, h)| want.get(k) == Some(h))
            })
        }
    };
    let took = wait::periodic_check(five(&written), Duration::from_secs(120));
    assert!(
        took,
        "the plain peer did not take five CDVCSs; its log:\n{}",
        tail(&log)
    );
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    assert!(
        text.contains("--max-subscriptions allows (5)") && text.contains("--mirror"),
        "{text}"
    );

    // The holder restarts with new commits in every CDVCS: the five follow, no sixth comes.
    holder.terminate_ok("the holder", &d.join("holder.log"));
    let all: Vec<CrdtKey> = written.states.keys().cloned().collect();
    for k in &all {
        written.commit(&holder_dir, k, 1, "again");
    }
    let mut holder = Proc::spawn(&holder_args, d, "holder2.log");
    wait_port(ph, Duration::from_secs(30));
    let took = wait::periodic_check(five(&written), Duration::from_secs(120));
    assert!(
        took,
        "the plain peer did not follow its five; its log:\n{}",
        tail(&log)
    );
    plain.terminate_ok("the plain peer", &log);
    let held = Store::open(&d.join("plain"))
        .expect("open")
        .list_crdts()
        .expect("list");
    assert_eq!(held.len(), 5, "the plain peer holds {held:?}");

    // A limit above the count: every CDVCS, at the holder's heads.
    let pe = free_port();
    let listen_e = format!("127.0.0.1:{pe}");
    let url_e = format!("ws://{listen_e}/");
    let enough = [
        "peer",
        "--store",
        "enough",
        "--listen",
        &listen_e,
        "--connect",
        &url_h,
        "--max-subscriptions",
        "50",
    ];
    let mut enough = Proc::spawn(&enough, d, "enough.log");
    wait_port(pe, Duration::from_secs(30));
    let want = hex(&written.heads());
    let all = wait::periodic_check(
        || status_heads(d, &url_e).as_ref() == Some(&want),
        Duration::from_secs(120),
    );
    assert!(
        all,
        "the peer did not take all {n} CDVCSs; its log:\n{}",
        tail(&d.join("enough.log"))
    );
    let text = String::from_utf8_lossy(&std::fs::read(d.join("enough.log")).unwrap_or_default())
        .into_owned();
    assert!(!text.contains("--max-subscriptions allows"), "{text}");
    enough.terminate_ok("the peer", &d.join("enough.log"));
    holder.terminate_ok("the holder", &d.join("holder2.log"));
}
