//! A mirror catching up many CDVCSs over one connection (DESIGN §16), its received batches
//! handed to many replicas at once (they share group commits): every CDVCS arrives with the
//! holder's heads, also when several batches of one CDVCS follow each other live, and the
//! CDVCSs a peer's subscriptions create are created in one durable write. The oracle is the
//! ids the holder's transacts returned.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use replikativ::crdt::CrdtKey;
use replikativ::id::Id;
use replikativ::node::{Node, StoreLocation};

use crate::common::nodes::{key, op, url};
use crate::common::wait::wait_until;

const LIMIT: Duration = Duration::from_secs(120);

/// The mirror's heads of each CDVCS, read from its store (what is durable there).
fn stored(node: &Node) -> BTreeMap<CrdtKey, Vec<Id>> {
    let store = node.store();
    let mut out = BTreeMap::new();
    for k in store.list_crdts().expect("list") {
        let raw = store
            .get_state(&replikativ::store::keys::heads(&k.user, &k.id))
            .expect("read heads");
        if let Some(raw) = raw {
            out.insert(k, rmp_serde::from_slice(&raw).expect("decode heads"));
        }
    }
    out
}

async fn wait_mirrored(node: &Node, want: &BTreeMap<CrdtKey, Vec<Id>>, what: &str) {
    wait_until(
        what,
        LIMIT,
        || stored(node) == *want,
        || {
            let have = stored(node);
            let differ = want.iter().filter(|(k, h)| have.get(*k) != Some(h)).count();
            format!("{differ} of {} CDVCSs differ", want.len())
        },
    )
    .await;
}

/// [`crate::common::http::get`] of `/metrics` off the arbiter thread: the number of the
/// node's durable group commits.
async fn group_commits(addr: SocketAddr) -> f64 {
    let body =
        tokio::task::spawn_blocking(move || crate::common::http::get(addr, "/metrics", None))
            .await
            .expect("request thread")
            .1;
    crate::common::http::metric(&body, "replikativ_store_commit_seconds", None)
        .expect("the commit histogram")
}

#[test]
fn a_mirror_takes_many_cdvcss_and_their_live_batches_in_order() {
    let n = crate::common::iterations(200, 100);
    actix_rt::System::new().block_on(async {
        let holder = Node::builder()
            .name("holder")
            .store(StoreLocation::Memory)
            .listen("127.0.0.1:0")
            .start()
            .await
            .expect("holder starts");
        let stage = holder.stage();
        let keys: Vec<CrdtKey> = (0..n).map(|_| key("mail:many@replikativ.io")).collect();
        let mut oracle = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            let mut last = None;
            for c in 0..3 {
                last = Some(
                    stage
                        .transact(k, vec![op((i * 100 + c) as u64)])
                        .await
                        .expect("transact"),
                );
            }
            oracle.insert(k.clone(), vec![last.expect("three commits")]);
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mirror = Node::builder()
            .name("mirror")
            .store_dir(dir.path())
            .connect(url(&holder))
            .mirror(true)
            .start()
            .await
            .expect("mirror starts");
        wait_mirrored(
            &mirror,
            &oracle,
            "the mirror holds every CDVCS at the holder's heads",
        )
        .await;

        // Live: five commits in each of 20 CDVCSs, interleaved, each relayed as its own batch.
        let live = &keys[..20];
        for round in 0..5u64 {
            for (i, k) in live.iter().enumerate() {
                let id = stage
                    .transact(k, vec![op(1_000_000 + round * 1000 + i as u64)])
                    .await
                    .expect("transact");
                oracle.insert(k.clone(), vec![id]);
            }
        }
        wait_mirrored(&mirror, &oracle, "the mirror takes the live commits").await;
        // Durable first, then in memory: the replicas follow their stores.
        wait_until(
            "the mirror's replicas hold the live commits",
            LIMIT,
            || {
                live.iter()
                    .all(|k| mirror.replica(k).is_some_and(|r| r.heads() == oracle[k]))
            },
            || "waiting".into(),
        )
        .await;
        mirror.shutdown().await;
        holder.shutdown().await;
    });
}

/// The CDVCSs a peer's subscriptions create go into one durable write: creating 300 takes
/// one group commit (the node writes nothing else meanwhile), not 300, and each is held.
#[test]
fn cdvcss_created_together_take_one_durable_write() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = Node::builder()
            .name("creator")
            .store_dir(dir.path())
            .listen("127.0.0.1:0")
            .start()
            .await
            .expect("node starts");
        let addr = node.listen_addr().expect("listening");
        let keys: Vec<CrdtKey> = (0..300)
            .map(|_| key("mail:created@replikativ.io"))
            .collect();
        let before = group_commits(addr).await;
        node.replicas().create_all(&keys).await.expect("create");
        assert_eq!(group_commits(addr).await, before + 1.0);
        let held = node.store().list_crdts().expect("list");
        assert!(keys.iter().all(|k| held.contains(k)));
        // Held ones are left alone: nothing written.
        node.replicas()
            .create_all(&keys)
            .await
            .expect("create again");
        assert_eq!(group_commits(addr).await, before + 1.0);
        node.shutdown().await;
    });
}

/// Starts a node named `name` on the store in `dir`, retrying until the previous node on it
/// has released the store.
async fn start_on(dir: &std::path::Path, name: &str) -> Node {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        match Node::builder()
            .name(name)
            .store_dir(dir)
            .listen("127.0.0.1:0")
            .start()
            .await
        {
            Ok(node) => return node,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                actix_rt::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the node does not start: {e}"),
        }
    }
}

/// The commit count `/status.json` at `addr` reports for its first CDVCS.
async fn status_commits(addr: SocketAddr) -> Option<u64> {
    let body =
        tokio::task::spawn_blocking(move || crate::common::http::get(addr, "/status.json", None))
            .await
            .expect("request thread")
            .1;
    let json: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    json["cdvcs"][0]["commits"].as_u64()
}

/// Starts a node `name` on `dir`, makes `n` commits in `k`, and shuts it down.
async fn commit_and_stop(dir: &std::path::Path, name: &str, k: &CrdtKey, n: u64) {
    let node = start_on(dir, name).await;
    for i in 0..n {
        node.stage()
            .transact(k, vec![op(i)])
            .await
            .expect("transact");
    }
    node.shutdown().await;
}

/// The scrape of a CDVCS whose replica is not started counts its history once and caches the
/// count with its heads: later scrapes read that record instead (shown by planting a wrong
/// count at the same heads, which the next scrape reports), and a CDVCS that changed is
/// counted again. The oracle is the number of commits the test made.
#[test]
fn the_status_of_a_cdvcs_not_started_counts_its_history_once() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = key("mail:count@replikativ.io");
        // More than a status counts each time (it caches the count of a longer history).
        let made = replikativ::replicas::COUNTED_EACH_TIME + 6;
        commit_and_stop(dir.path(), "counted", &k, made).await;
        // Started again (once the store is released): the replica is not, until used.
        let node = start_on(dir.path(), "counted").await;
        assert!(!node.replicas().running(&k));
        let addr = node.listen_addr().expect("listening");
        assert_eq!(status_commits(addr).await, Some(made));
        let record = replikativ::store::keys::commit_count(&k.user, &k.id);
        wait_until(
            "the count is cached",
            LIMIT,
            || node.store().get_state(&record).expect("read").is_some(),
            || "waiting".into(),
        )
        .await;
        let (heads, count): (Vec<Id>, u64) = rmp_serde::from_slice(
            &node
                .store()
                .get_state(&record)
                .expect("read")
                .expect("cached"),
        )
        .expect("decode");
        assert_eq!(count, made);
        // A planted count at the same heads is what the next scrape reports: it read no history.
        let mut batch = replikativ::store::WriteBatch::new();
        batch.put_state(
            record.clone(),
            rmp_serde::to_vec(&(&heads, 1_000u64)).expect("encode"),
        );
        node.store().write(&batch).expect("plant");
        assert_eq!(status_commits(addr).await, Some(1_000));
        assert!(
            !node.replicas().running(&k),
            "the scrape started no replica"
        );
        // Other heads: counted again.
        let mut batch = replikativ::store::WriteBatch::new();
        batch.put_state(
            record,
            rmp_serde::to_vec(&(vec![Id::of(b"other")], 1_000u64)).expect("encode"),
        );
        node.store().write(&batch).expect("plant");
        assert_eq!(status_commits(addr).await, Some(made));
        node.shutdown().await;
    });
}

/// The status of a running replica that opened with its heads only (history in the store):
/// its count is the cached count plus the commits its heads gained since, found by a walk over
/// the new commits, not a scan of the history — shown by planting a wrong count at the
/// restart's heads, which the scrape after two more commits reports plus two.
#[test]
fn the_status_of_a_running_replica_counts_only_what_it_gained() {
    actix_rt::System::new().block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = key("mail:gained@replikativ.io");
        let made = replikativ::replicas::COUNTED_EACH_TIME + 10;
        commit_and_stop(dir.path(), "gained", &k, made).await;
        let node = start_on(dir.path(), "gained").await;
        let heads = node.stage().heads(&k).await.expect("heads");
        assert!(node.replicas().running(&k));
        let addr = node.listen_addr().expect("listening");
        assert_eq!(
            status_commits(addr).await,
            Some(made),
            "counted from the store"
        );
        let record = replikativ::store::keys::commit_count(&k.user, &k.id);
        let mut sorted: Vec<Id> = heads.to_vec();
        sorted.sort();
        // The scrape caches its count by a detached write: wait for it to land, or it could
        // land after the planted count and replace it (CI once saw exactly that).
        wait_until(
            "the scrape's count is cached",
            LIMIT,
            || {
                let cached = node.store().get_state(&record).expect("read");
                cached.is_some_and(|raw| {
                    rmp_serde::from_slice::<(Vec<Id>, u64)>(&raw)
                        .is_ok_and(|(at, count)| at == sorted && count == made)
                })
            },
            || "waiting".into(),
        )
        .await;
        let mut batch = replikativ::store::WriteBatch::new();
        batch.put_state(
            record,
            rmp_serde::to_vec(&(&sorted, 1_000u64)).expect("encode"),
        );
        node.store().write(&batch).expect("plant");
        for i in 0..2 {
            node.stage()
                .transact(&k, vec![op(made + i)])
                .await
                .expect("transact");
        }
        assert_eq!(
            status_commits(addr).await,
            Some(1_002),
            "the cached count plus the two commits gained, no history scanned"
        );
        node.shutdown().await;
    });
}
