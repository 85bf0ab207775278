//! Store behaviour through its public API: round trips, dedupe, atomic batches, prefix scans,
//! verification, fault injection, and the `StoreActor`'s group commit. Failing and held writes
//! go through a store over the simulated disk ([`FaultyDisk`]): the store has no test hooks.
//! Files on disk (damaged, foreign, in use) are in `store_files.rs`; the kill test in
//! `store_crash.rs`.

use std::ops::ControlFlow;
use std::time::Duration;

use crate::common::wait::eventually;
use crate::faulty_backend::FaultyDisk;
use actix::Actor;
use replikativ::Id;
use replikativ::realize::realizer::error_chain;
use replikativ::store::{
    GetState, GetValues, GroupCommitter, ScanState, Store, StoreActor, StoreError, Write,
    WriteBatch, keys,
};
use uuid::Uuid;

fn both_backends() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let on_disk = Store::open(dir.path()).expect("open");
    vec![
        (Store::in_memory().expect("memory"), None),
        (on_disk, Some(dir)),
    ]
}

/// A store over a fresh simulated disk, whose writes the test can fail or hold.
fn store_on_disk(label: &str) -> (Store, FaultyDisk) {
    let disk = FaultyDisk::new(0);
    let store = Store::with_backend(disk.clone(), label).expect("store over the simulated disk");
    (store, disk)
}

/// Whether `err` is a commit that failed on the disk's injected write failure: an I/O error,
/// which redb latches and the store answers by reopening on its next operation.
fn is_injected_write_failure(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Transaction { op: "committing a write", source }
            if matches!(&**source, redb::Error::Io(e)
                if e.to_string().contains("injected write failure"))
    )
}

#[test]
fn values_state_and_blobs_round_trip_on_both_backends() {
    for (store, _dir) in both_backends() {
        let mut batch = WriteBatch::new();
        let bytes = rmp_serde::to_vec(&("tweet", 42u32)).expect("encode");
        let id = batch.put_value(bytes.clone());
        let blob = batch.put_blob(vec![0xff; 5000]);
        batch.put_state(b"a/1".to_vec(), b"one".to_vec());
        store.write(&batch).expect("write");

        assert_eq!(id, Id::of(&bytes));
        assert_eq!(store.get_value(&id).expect("get"), Some(bytes.clone()));
        assert!(store.has_value(&id).expect("has"));
        assert_eq!(store.get_blob(&blob).expect("blob"), Some(vec![0xff; 5000]));
        assert_eq!(
            store.get_state(b"a/1").expect("state"),
            Some(b"one".to_vec())
        );
        let absent = Id::of(b"absent");
        assert_eq!(
            store.get_values(&[absent, id]).expect("values"),
            vec![None, Some(bytes)]
        );
        assert!(!store.has_value(&absent).expect("has"));
        assert_eq!(store.get_state(b"a/2").expect("state"), None);
    }
}

#[test]
fn writing_an_existing_value_is_a_no_op() {
    let store = Store::in_memory().expect("store");
    let mut batch = WriteBatch::new();
    let id = batch.put_value(b"same".to_vec());
    store.write(&batch).expect("first");
    store.write(&batch).expect("second");
    let mut again = WriteBatch::new();
    assert_eq!(again.put_value(b"same".to_vec()), id);
    store.write(&again).expect("third");
    assert_eq!(store.value_count().expect("count"), 1);
    assert_eq!(store.get_value(&id).expect("get"), Some(b"same".to_vec()));
}

#[test]
fn state_is_overwritten_and_deleted() {
    let store = Store::in_memory().expect("store");
    let mut b = WriteBatch::new();
    b.put_state(b"k".to_vec(), b"1".to_vec());
    store.write(&b).expect("write");
    let mut b = WriteBatch::new();
    b.put_state(b"k".to_vec(), b"2".to_vec());
    store.write(&b).expect("write");
    assert_eq!(store.get_state(b"k").expect("get"), Some(b"2".to_vec()));
    let mut b = WriteBatch::new();
    b.delete_state(b"k".to_vec());
    store.write(&b).expect("write");
    assert_eq!(store.get_state(b"k").expect("get"), None);
}

#[test]
fn a_failed_batch_writes_nothing_of_values_or_state() {
    let (store, disk) = store_on_disk("failing");
    let mut batch = WriteBatch::new();
    let id = batch.put_value(b"v".to_vec());
    batch.put_state(b"s".to_vec(), b"x".to_vec());
    disk.fail_next_writes(1);
    let err = store.write(&batch).expect_err("injected");
    assert!(is_injected_write_failure(&err), "{}", error_chain(&err));
    assert_eq!(disk.failing_writes(), 0, "no more failures to come");
    // redb latched the I/O error: these reads work only because the store reopened first.
    assert!(!store.has_value(&id).expect("has"));
    assert_eq!(store.get_state(b"s").expect("get"), None);
    store.write(&batch).expect("the next write succeeds");
    assert!(store.has_value(&id).expect("has"));
    assert_eq!(store.get_state(b"s").expect("get"), Some(b"x".to_vec()));
}

#[test]
fn prefix_scan_returns_exactly_the_prefixed_keys_in_order() {
    let store = Store::in_memory().expect("store");
    let mut b = WriteBatch::new();
    for k in ["a/2", "a/1", "a", "a0", "b/1", "a/10"] {
        b.put_state(k.as_bytes().to_vec(), k.as_bytes().to_vec());
    }
    store.write(&b).expect("write");
    let keys: Vec<Vec<u8>> = store
        .scan_state(b"a/")
        .expect("scan")
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(k, v);
            k
        })
        .collect();
    assert_eq!(
        keys,
        vec![b"a/1".to_vec(), b"a/10".to_vec(), b"a/2".to_vec()]
    );

    let mut first = Vec::new();
    store
        .visit_state(b"a", |k, _| {
            first.push(k.to_vec());
            ControlFlow::Break(())
        })
        .expect("visit");
    assert_eq!(first, vec![b"a".to_vec()]);
    assert!(store.scan_state(b"c").expect("scan").is_empty());
}

#[test]
fn list_crdts_finds_each_crdt_once_however_many_commits_it_has() {
    let store = Store::in_memory().expect("store");
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let mut batch = WriteBatch::new();
    for i in 0..50u32 {
        let commit = Id::of(&i.to_be_bytes());
        batch.put_state(keys::graph_entry("alice", &a, &commit), vec![0x90]);
    }
    batch.put_state(keys::heads("alice", &a), vec![0x90]);
    batch.put_state(keys::meta("alice/x", &b), vec![0x90]);
    batch.put_state(keys::meta("bob", &a), vec![0x90]);
    batch.put_state(keys::subscription("bob", &a), vec![]);
    batch.put_state(b"node/id".to_vec(), b"me".to_vec());
    store.write(&batch).expect("write");

    let users: Vec<(String, Uuid)> = store
        .list_crdts()
        .expect("list")
        .into_iter()
        .map(|c| (c.user, c.id))
        .collect();
    assert_eq!(
        users,
        vec![
            ("bob".to_string(), a),
            ("alice".to_string(), a),
            ("alice/x".to_string(), b)
        ]
    );
    let graph = store
        .scan_state(&keys::graph_prefix("alice", &a))
        .expect("scan");
    assert_eq!(graph.len(), 50);
    let subs = store.list_subscriptions().expect("subs");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].user, "bob");
}

#[test]
fn verify_reports_a_clean_store_as_clean() {
    let store = Store::in_memory().expect("store");
    let mut b = WriteBatch::new();
    for i in 0..10u32 {
        b.put_value(i.to_be_bytes().to_vec());
    }
    b.put_blob(b"blob".to_vec());
    b.put_state(b"s".to_vec(), vec![]);
    store.write(&b).expect("write");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        (
            report.values_checked,
            report.blobs_checked,
            report.state_records
        ),
        (10, 1, 1)
    );
    let mut seen = 0;
    store
        .for_each_value(|id, bytes| {
            assert_eq!(Id::of(bytes), id);
            seen += 1;
            ControlFlow::Continue(())
        })
        .expect("for each");
    assert_eq!(seen, 10);
}

#[actix_rt::test]
async fn concurrent_writers_through_the_actor_are_all_durable_and_grouped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let actor = StoreActor::new(store.clone()).start();
    let writers = 16u32;
    let per_writer = 10u32;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let actor = actor.clone();
            actix_rt::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..per_writer {
                    let mut b = WriteBatch::new();
                    ids.push(b.put_value(format!("{w}/{i}").into_bytes()));
                    b.put_state(format!("w/{w}/{i}").into_bytes(), vec![1]);
                    actor.send(Write(b)).await.expect("mailbox").expect("write");
                }
                ids
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.expect("task"));
    }
    let got = actor
        .send(GetValues(ids.clone()))
        .await
        .expect("mailbox")
        .expect("read");
    assert!(got.iter().all(Option::is_some));
    let scanned = actor
        .send(ScanState(b"w/".to_vec()))
        .await
        .expect("mailbox")
        .expect("scan");
    assert_eq!(scanned.len(), (writers * per_writer) as usize);
    assert!(
        store.commit_count() <= u64::from(writers * per_writer),
        "never more transactions than batches"
    );
}

#[actix_rt::test]
async fn batches_queued_during_a_commit_share_the_next_transaction() {
    let (store, disk) = store_on_disk("held");
    let committer = GroupCommitter::start(store.clone()).expect("start");
    let commits_before = store.commit_count();
    let hold = disk.hold_syncs();
    // `submit` queues synchronously, so all 50 are queued while the writer is held: whatever
    // it took before the hold stalls at its commit point (the disk's sync), the rest form the
    // next group.
    let pending: Vec<_> = (0..50u32)
        .map(|i| {
            let mut b = WriteBatch::new();
            b.put_value(i.to_be_bytes().to_vec());
            committer.submit(b)
        })
        .collect();
    eventually(
        "the writer to wait at its commit point",
        Duration::from_secs(10),
        || disk.waiting_syncs() == 1,
    )
    .await;
    drop(hold);
    for p in pending {
        p.await.expect("write");
    }
    let commits = store.commit_count() - commits_before;
    assert!(commits <= 2, "50 batches took {commits} transactions");
    assert_eq!(store.value_count().expect("count"), 50);
}

#[actix_rt::test]
async fn reads_through_the_actor_do_not_wait_for_a_write_in_progress() {
    let (store, disk) = store_on_disk("held");
    let mut first = WriteBatch::new();
    first.put_state(b"k".to_vec(), b"old".to_vec());
    store.write(&first).expect("write");
    let actor = StoreActor::new(store.clone()).start();

    let hold = disk.hold_syncs();
    let mut b = WriteBatch::new();
    b.put_state(b"k".to_vec(), b"new".to_vec());
    let write = actor.send(Write(b));
    eventually(
        "the write to wait at its commit point",
        Duration::from_secs(10),
        || disk.waiting_syncs() == 1,
    )
    .await;
    let read = tokio::time::timeout(Duration::from_secs(10), actor.send(GetState(b"k".to_vec())))
        .await
        .expect("the read finished while the write was held")
        .expect("mailbox")
        .expect("read");
    assert_eq!(read, Some(b"old".to_vec()));
    drop(hold);
    write.await.expect("mailbox").expect("write");
    assert_eq!(store.get_state(b"k").expect("get"), Some(b"new".to_vec()));
}

#[actix_rt::test]
async fn a_failed_write_reaches_its_caller_and_stops_the_actor_and_a_new_actor_works() {
    let (store, disk) = store_on_disk("failing");
    let actor = StoreActor::new(store.clone()).start();
    disk.fail_next_writes(1);
    let mut b = WriteBatch::new();
    let id = b.put_value(b"v".to_vec());
    let err = actor
        .send(Write(b.clone()))
        .await
        .expect("mailbox")
        .expect_err("injected");
    assert!(is_injected_write_failure(&err), "{}", error_chain(&err));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while actor.connected() {
        assert!(tokio::time::Instant::now() < deadline, "actor did not stop");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restarted = StoreActor::new(store.clone()).start();
    restarted
        .send(Write(b))
        .await
        .expect("mailbox")
        .expect("write");
    assert!(store.has_value(&id).expect("has"));
}
