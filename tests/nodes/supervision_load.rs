//! Supervision under load: children crash while thousands of transacts are in flight, the tree
//! returns to its shape with no acknowledged write lost, and shutdown never deadlocks.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use crate::common::stage_support::{fresh_key, memory_realizer, note, shape};
use crate::common::wait::{eventually, eventually_async};
use crate::faulty_backend::FaultyDisk;
use replikativ::Node;
use replikativ::crdt::CrdtKey;
use replikativ::node::StoreLocation;
use replikativ::realize::realizer::ConflictPolicy;
use replikativ::realize::{InjectedFailure, MemorySink};
use replikativ::store::Store;
use replikativ::{Id, Stage};
use replikativ_actors::EventKind;

const T: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Outcome {
    acked: Vec<Id>,
    failed: usize,
}

/// Starts `n` transacts at once, each a separate task; their outcomes land in the result.
fn flood(stage: &Stage, key: &CrdtKey, n: usize, prefix: &str) -> Rc<RefCell<Outcome>> {
    let out = Rc::new(RefCell::new(Outcome::default()));
    for i in 0..n {
        let (stage, key, out) = (stage.clone(), key.clone(), out.clone());
        let tag = format!("{prefix}-{i}");
        actix_rt::spawn(async move {
            match stage.transact(&key, vec![note(&tag)]).await {
                Ok(id) => out.borrow_mut().acked.push(id),
                Err(_) => out.borrow_mut().failed += 1,
            }
        });
    }
    out
}

#[test]
fn children_crash_while_thousands_of_transacts_are_in_flight_and_the_tree_returns_to_its_shape() {
    actix_rt::System::new().block_on(async {
        let key = fresh_key();
        // The store is over the simulated disk, whose writes the test fails on demand.
        let disk = FaultyDisk::new(0);
        let store = Store::with_backend(disk.clone(), "node").expect("store");
        let sink = MemorySink::new();
        let node = Node::builder()
            .store(StoreLocation::Open(store.clone()))
            .listen("127.0.0.1:0")
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let initial = shape(&node.supervisor().tree().await.expect("tree"));
        let mut events = node.events();
        let stage = node.stage();
        let n = crate::common::iterations(3000, 1500);
        let rounds = 2;

        // Each round floods the replica, then the store fails while those transacts are in
        // flight (rest-for-one restarts replicas, peers and realizers with it) and the
        // realizer's sink panics once. A small second flood right after the injection makes
        // sure the failing write carries transacts, whether or not the first is still going.
        let mut waves = Vec::new();
        for round in 0..rounds {
            let size = n / rounds;
            let wave = flood(&stage, &key, size, &format!("w{round}"));
            eventually("the wave to be under way", T, || {
                wave.borrow().acked.len() >= 100
            })
            .await;
            waves.push((wave, size));
            disk.fail_next_writes(1);
            sink.fail_next(InjectedFailure::Panic);
            waves.push((flood(&stage, &key, 50, &format!("x{round}")), 50));
            loop {
                let ev = tokio::time::timeout(T, events.recv())
                    .await
                    .expect("a supervision event within the deadline")
                    .expect("event");
                if let EventKind::ChildRestarted { child, .. } = &ev.kind
                    && child.as_str() == "store"
                {
                    break;
                }
            }
        }
        eventually("every transact to be answered", T, || {
            waves.iter().all(|(w, size)| {
                let o = w.borrow();
                o.acked.len() + o.failed == *size
            })
        })
        .await;
        let acked: Vec<Id> = waves
            .iter()
            .flat_map(|(w, _)| w.borrow().acked.clone())
            .collect();
        let failed: usize = waves.iter().map(|(w, _)| w.borrow().failed).sum();
        assert!(failed > 0, "the store failures must have refused something");
        // What was in flight when the store failed is refused (never half-done): the
        // acknowledged part is what must survive.
        assert!(acked.len() >= 100 * rounds, "acknowledged: {}", acked.len());

        // The tree returns to its initial shape (the replica comes back on demand).
        let end = std::time::Instant::now() + T;
        let after = loop {
            match stage.transact(&key, vec![note("after")]).await {
                Ok(id) => break id,
                Err(e) => {
                    assert!(std::time::Instant::now() < end, "no recovery: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        eventually_async("the tree to return to its shape", T, || async {
            shape(&node.supervisor().tree().await.expect("tree")) == initial
        })
        .await;

        // No acknowledged write is lost; the realizer applied each commit's op once.
        let history: HashSet<Id> = stage
            .history(&key, &after)
            .await
            .expect("history")
            .into_iter()
            .collect();
        assert_eq!(stage.heads(&key).await.expect("heads"), vec![after]);
        for id in &acked {
            assert!(history.contains(id), "acknowledged commit {id} lost");
        }
        let realizer = node.realizer("mem").expect("mem");
        eventually("the realizer to catch up", T, || {
            realizer.is_applied(&after)
        })
        .await;
        let snap = sink.snapshot();
        let tags: HashSet<&str> = snap
            .ops
            .iter()
            .map(|o| o.params["tag"].as_str().expect("tag"))
            .collect();
        assert_eq!(tags.len(), snap.ops.len(), "an op was applied twice");
        assert_eq!(
            snap.ops.len(),
            history.len() - 1,
            "every commit but the root"
        );
        for id in &acked {
            assert!(snap.applied.contains(id));
        }

        tokio::time::timeout(Duration::from_secs(30), node.shutdown())
            .await
            .expect("shutdown completes within 30 s");
    });
}

#[test]
fn shutdown_completes_within_a_deadline_while_thousands_of_transacts_are_in_flight() {
    actix_rt::System::new().block_on(async {
        let key = fresh_key();
        let sink = MemorySink::new();
        let peer = Node::builder()
            .name("peer")
            .listen("127.0.0.1:0")
            .cdvcs(key.clone())
            .start()
            .await
            .expect("peer");
        let url = format!("ws://{}/", peer.listen_addr().expect("addr"));
        let node = Node::builder()
            .connect(url)
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let n = crate::common::iterations(3000, 1500);
        let wave = flood(&node.stage(), &key, n, "s");
        eventually("some transacts to be acknowledged", T, || {
            wave.borrow().acked.len() > 50
        })
        .await;
        tokio::time::timeout(Duration::from_secs(30), node.shutdown())
            .await
            .expect("shutdown completes within 30 s under load");
        eventually("every in-flight transact to be answered", T, || {
            let o = wave.borrow();
            o.acked.len() + o.failed == n
        })
        .await;
        assert!(!node.supervisor().is_running());
        // The peer is unaffected and shuts down too.
        tokio::time::timeout(Duration::from_secs(30), peer.shutdown())
            .await
            .expect("the peer shuts down");
    });
}
