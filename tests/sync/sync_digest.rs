//! Sharing by digests (protocol 5) over the simulated network: a reconnect with nothing new
//! exchanges one `Digests` frame per side whatever the number of CRDTs; one after changes in
//! a few CRDTs sends `Heads` only about those (and any that share their slot); what changes
//! during the exchange is still sent; CRDTs one side lacks are found and created.

use std::collections::BTreeSet;

use replikativ::crdt::CrdtKey;
use replikativ::protocol::Message;
use replikativ::sync::{
    Effect, GraphView, Handshake, Rights, Role, SessionConfig, SyncLimits, SyncSession,
};
use uuid::Uuid;

use super::support::dag::Replica;
use super::support::net::Sim;

fn key(i: usize) -> CrdtKey {
    CrdtKey::new("mail:digest@test", Uuid::from_u128(0xd1 + i as u128))
}

fn params(i: usize) -> Vec<Vec<u8>> {
    vec![format!("v{i}").into_bytes()]
}

const STEPS: usize = 10_000_000;

/// Replica 0 holds `n` CRDTs of 3 commits; replica 1 holds `keys(extra)` more of its own.
/// Replica 1 dials 0 (link end 0 dials).
fn two(n: usize, extra: usize) -> (Sim, Vec<CrdtKey>) {
    let keys: Vec<CrdtKey> = (0..n + extra).map(key).collect();
    let mut a = Replica::new(Uuid::from_u128(1), Vec::new());
    let mut b = Replica::new(Uuid::from_u128(2), Vec::new());
    for (i, k) in keys.iter().enumerate() {
        let holder = if i < n { &mut a } else { &mut b };
        for c in 0..3 {
            holder.commit(k, &params(i * 10 + c), c as i64);
        }
    }
    let mut sim = Sim::new(vec![a, b], &[(1, 0)], 17);
    sim.digests = true;
    (sim, keys)
}

fn kinds(sim: &Sim) -> Vec<&'static str> {
    sim.log
        .as_ref()
        .expect("logging")
        .iter()
        .map(|(_, _, k)| *k)
        .collect()
}

#[test]
fn a_first_sync_by_digests_creates_what_each_side_lacks_and_converges() {
    let (mut sim, keys) = two(300, 40);
    sim.heal(0);
    sim.quiesce(STEPS);
    sim.assert_converged(&keys);
    assert!(
        sim.closes.is_empty() && sim.rejects.is_empty(),
        "{:?}",
        sim.closes
    );
}

#[test]
fn a_reconnect_with_nothing_new_exchanges_one_digest_each_way() {
    let (mut sim, keys) = two(1_000, 0);
    sim.heal(0);
    sim.quiesce(STEPS);
    sim.assert_converged(&keys);
    sim.log = Some(Vec::new());
    let before = sim.bytes;
    sim.heal(0);
    sim.quiesce(STEPS);
    let mut seen = kinds(&sim);
    seen.sort();
    assert_eq!(
        seen,
        ["digests", "digests", "hello", "hello", "proof", "proof"]
    );
    let bytes = sim.bytes - before;
    assert!(
        bytes < 600,
        "{bytes} bytes for a reconnect with nothing new"
    );
    // Everything is shared: a new commit afterwards is relayed.
    sim.local_commit(0, &keys[500], &params(9_999), 99);
    sim.quiesce(STEPS);
    sim.assert_converged(&keys);
}

/// Issue 16's reconnect target counts round trips: with nothing new, and without the saved
/// per-peer hints, both sides know they are level after three one-way flights from the
/// websocket's opening — `Hello` both ways at once, `Proof` both ways, `Digests` both ways —
/// that is 1.5 round trips, whatever the length of the history and the number of CRDTs.
#[test]
fn a_reconnect_with_nothing_new_takes_three_one_way_flights_whatever_the_history() {
    for (crdts, history) in [(1, 10), (1, 3_000), (500, 3)] {
        let keys: Vec<CrdtKey> = (0..crdts).map(key).collect();
        let mut a = Replica::new(Uuid::from_u128(1), Vec::new());
        for (i, k) in keys.iter().enumerate() {
            for c in 0..history {
                a.commit(k, &params(i * 10_000 + c), c as i64);
            }
        }
        let mut sim = Sim::new(
            vec![a, Replica::new(Uuid::from_u128(2), Vec::new())],
            &[(1, 0)],
            5,
        );
        sim.digests = true;
        sim.heal(0);
        sim.quiesce(STEPS);
        sim.assert_converged(&keys);
        for r in &mut sim.replicas {
            r.hints.clear();
        }
        sim.log = Some(Vec::new());
        let before = sim.bytes;
        sim.heal(0);
        let mut flights = 0;
        while sim.flight() {
            flights += 1;
            assert!(flights <= 10, "no end to the exchange");
        }
        let mut seen = kinds(&sim);
        seen.sort();
        assert_eq!(
            seen,
            ["digests", "digests", "hello", "hello", "proof", "proof"],
            "{crdts} CRDTs of {history} commits"
        );
        assert_eq!(flights, 3, "{crdts} CRDTs of {history} commits");
        let bytes = sim.bytes - before;
        assert!(
            bytes <= 1024,
            "{bytes} bytes ({crdts} CRDTs of {history} commits)"
        );
    }
}

#[test]
fn crdts_shared_by_equal_digests_save_the_peer_s_heads_as_the_hint() {
    let (mut sim, keys) = two(50, 0);
    sim.heal(0);
    sim.quiesce(STEPS);
    sim.assert_converged(&keys);
    // Hints lost (a store copied without them): the next reconnect shares everything by
    // equal digests and saves the peer's heads again, on both sides.
    for r in &mut sim.replicas {
        r.hints.clear();
    }
    sim.heal(0);
    sim.quiesce(STEPS);
    for r in &sim.replicas {
        for k in &keys {
            let ours = r.crdts.get(k).expect("held").heads();
            let saved: Vec<_> = r
                .hints
                .iter()
                .filter(|((_, crdt), _)| crdt == k)
                .map(|(_, heads)| heads.clone())
                .collect();
            assert_eq!(saved.len(), 1, "one hint of {k}");
            assert_eq!(
                saved[0].iter().collect::<BTreeSet<_>>(),
                ours.iter().collect::<BTreeSet<_>>(),
                "the hint of {k} is the peer's heads"
            );
        }
    }
}

#[test]
fn a_reconnect_after_changes_in_a_few_crdts_sends_heads_of_those_only() {
    let (mut sim, keys) = two(1_000, 0);
    sim.heal(0);
    sim.quiesce(STEPS);
    sim.cut(0);
    let changed: BTreeSet<usize> = [3, 404, 777].into();
    for &i in &changed {
        // Two on the holder, one on the other side.
        sim.local_commit(0, &keys[i], &params(50_000 + i), 50);
    }
    sim.local_commit(1, &keys[900], &params(60_000), 60);
    let changed_keys: Vec<CrdtKey> = changed
        .iter()
        .chain([900].iter())
        .map(|&i| keys[i].clone())
        .collect();
    // The CRDTs that share a slot with a changed one are compared too.
    let slots: BTreeSet<u16> = changed_keys
        .iter()
        .map(replikativ::sync::digest::slot)
        .collect();
    let compared = keys
        .iter()
        .filter(|k| slots.contains(&replikativ::sync::digest::slot(k)))
        .count();
    sim.log = Some(Vec::new());
    sim.heal(0);
    sim.quiesce(STEPS);
    sim.assert_converged(&keys);
    let seen = kinds(&sim);
    let heads = seen.iter().filter(|k| **k == "heads").count();
    assert!(
        heads <= 2 * compared + 2 * changed_keys.len(),
        "{heads} heads frames for {} changed CRDTs ({compared} compared)",
        changed_keys.len()
    );
    let digests = seen.iter().filter(|k| **k == "digests").count();
    // Root each way, then per changed CRDT at most one frame each way per level below it.
    assert!(
        digests <= 2 + 2 * 3 * changed_keys.len(),
        "{digests} digests frames"
    );
}

#[test]
fn a_change_during_the_exchange_is_sent_once_shared() {
    let (mut sim, keys) = two(200, 0);
    sim.heal(0);
    sim.quiesce(STEPS);
    sim.heal(0);
    // Both sides authorized (their root digests sent, not both compared yet): commit on
    // both sides.
    let authorized = |sim: &Sim| {
        sim.links[0]
            .sessions
            .as_ref()
            .is_some_and(|s| s.iter().all(|s| s.is_authorized()))
    };
    while !authorized(&sim) {
        assert!(sim.step(), "the handshake stalled");
    }
    sim.local_commit(0, &keys[10], &params(70_000), 70);
    sim.local_commit(1, &keys[20], &params(70_001), 71);
    sim.quiesce(STEPS);
    sim.assert_converged(&keys);
    assert!(
        sim.rechecks >= 1,
        "no change was made while offered and not shared"
    );
}

#[test]
fn a_peer_without_read_is_offered_nothing() {
    let (mut sim, keys) = two(50, 0);
    // The holder (end 1 of the link) gives the dialler no read.
    sim.rights = [Rights::ALL, Rights::WRITE];
    sim.heal(0);
    sim.quiesce(STEPS);
    assert!(
        keys.iter().all(|k| !sim.replicas[1].crdts.contains_key(k)),
        "the dialler learned of CRDTs it may not read"
    );
}

#[test]
fn a_digest_of_a_position_that_does_not_exist_closes() {
    let peer = Replica::new(Uuid::from_u128(9), Vec::new());
    let mut us = SyncSession::new(SessionConfig {
        handshake: Handshake::new(
            Replica::new(Uuid::from_u128(8), Vec::new()).key(),
            Role::Acceptor,
            [1; 32],
            None,
        ),
        subscriptions: Vec::new(),
        limits: SyncLimits::default(),
    });
    let mut them = Handshake::new(peer.key(), Role::Dialler, [2; 32], None);
    let ours = us.start();
    let Some(Effect::Send(our_hello)) = ours.into_iter().next() else {
        panic!("a session starts with its hello");
    };
    let proof = them.on_message(&our_hello).expect("our hello");
    let _ = us.on_message(them.hello(), &peer);
    let effects = us.on_message(proof.expect("their proof"), &peer);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Authenticated { .. }))
    );
    let _ = us.authorize_with_offer(Rights::ALL, Default::default(), &peer);
    let effects = us.on_message(
        Message::Digests {
            level: 2,
            parent: 4_000,
            digests: vec![replikativ::protocol::FixedBytes([0; 16]); 16],
        },
        &peer,
    );
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Close { .. })),
        "{effects:?}"
    );
}
