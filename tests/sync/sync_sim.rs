//! Replication over a simulated network of 3–5 replicas whose links drop, duplicate, reorder,
//! cut and heal: after healing, all replicas converge. Also the cost of reconnecting, and the
//! flow control of catch-ups: a slow peer, a full window, a stalled peer, the last batch.

use std::time::Duration;

use crate::support::dag::Replica;
use crate::support::net::{Faults, Sim};
use proptest::prelude::*;
use replikativ::crdt::CrdtKey;
use uuid::Uuid;

fn crdts() -> Vec<CrdtKey> {
    vec![
        CrdtKey::new("mail:a@x.org", Uuid::from_u128(1)),
        CrdtKey::new("mail:b@x.org", Uuid::from_u128(2)),
    ]
}

fn replicas(n: usize) -> Vec<Replica> {
    (0..n)
        .map(|i| Replica::new(Uuid::from_u128(100 + i as u128), crdts()))
        .collect()
}

fn line(n: usize) -> Vec<(usize, usize)> {
    (1..n).map(|i| (i - 1, i)).collect()
}

fn mesh(n: usize) -> Vec<(usize, usize)> {
    (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .collect()
}

fn ring(n: usize) -> Vec<(usize, usize)> {
    let mut edges = line(n);
    edges.push((n - 1, 0));
    edges
}

fn star(n: usize) -> Vec<(usize, usize)> {
    (1..n).map(|i| (0, i)).collect()
}

/// Params from a small alphabet so values are shared between commits.
fn params(seed: u64) -> Vec<Vec<u8>> {
    (0..(seed % 3))
        .map(|i| format!("value-{}", (seed / 3 + i) % 7).into_bytes())
        .collect()
}

#[test]
fn three_replicas_on_a_line_converge_through_relay() {
    let mut sim = Sim::new(replicas(3), &line(3), 1);
    sim.heal_all();
    let c = crdts();
    sim.local_commit(0, &c[0], &params(4), 1);
    sim.local_commit(2, &c[0], &params(5), 2);
    sim.local_commit(2, &c[1], &params(7), 3);
    sim.quiesce(100_000);
    sim.assert_converged(&c);
    assert!(sim.rejects.is_empty(), "{:?}", sim.rejects);
    assert!(sim.closes.is_empty(), "{:?}", sim.closes);
    // Concurrent commits on replicas 0 and 2 leave two heads (a conflict, not an error).
    assert_eq!(sim.replicas[1].crdts[&c[0]].heads.len(), 2);
}

#[test]
fn a_replica_without_subscriptions_is_filled_by_its_peers_subscriptions() {
    let mut reps = replicas(3);
    reps[1] = Replica::new(Uuid::from_u128(999), Vec::new());
    let mut sim = Sim::new(reps, &line(3), 2);
    sim.heal_all();
    let c = crdts();
    sim.local_commit(0, &c[0], &params(8), 1);
    sim.local_commit(2, &c[1], &params(9), 2);
    sim.quiesce(100_000);
    sim.assert_converged(&c);
}

#[test]
fn concurrent_histories_converge_after_a_partition_heals() {
    let mut sim = Sim::new(replicas(4), &ring(4), 3);
    sim.heal_all();
    let c = crdts();
    for i in 0..5 {
        sim.local_commit(0, &c[0], &params(i), i as i64);
    }
    sim.quiesce(100_000);
    // Partition {0,1} from {2,3}; both sides write.
    sim.cut(1);
    sim.cut(3);
    for i in 0..20 {
        sim.local_commit((i % 4) as usize, &c[0], &params(i + 10), 100 + i as i64);
        sim.local_commit((i % 4) as usize, &c[1], &params(i + 20), 200 + i as i64);
    }
    sim.quiesce(100_000);
    sim.heal_all();
    sim.quiesce(100_000);
    sim.assert_converged(&c);
    assert!(sim.rejects.is_empty(), "{:?}", sim.rejects);
}

#[test]
fn five_replicas_converge_after_a_lossy_duplicating_reordering_phase() {
    let mut sim = Sim::new(replicas(5), &mesh(5), 4);
    sim.faults = Faults {
        drop: 10,
        duplicate: 10,
        reorder: 20,
    };
    sim.heal_all();
    let c = crdts();
    for i in 0..60u64 {
        sim.local_commit((i % 5) as usize, &c[(i % 2) as usize], &params(i), i as i64);
        for _ in 0..20 {
            sim.step();
        }
        if i % 13 == 0 {
            sim.heal((i % 10) as usize);
        }
    }
    sim.faults = Faults::default();
    sim.heal_all();
    let rejects_before = sim.rejects.len();
    sim.quiesce(1_000_000);
    sim.assert_converged(&c);
    assert_eq!(sim.rejects.len(), rejects_before, "{:?}", sim.rejects);
    eprintln!(
        "lossy phase: {} closes, {} rejects",
        sim.closes.len(),
        rejects_before
    );
}

/// Two replicas holding the same `n` commits, connected and quiet.
fn synced_pair(n: usize) -> Sim {
    let mut reps = replicas(2);
    let c = crdts();
    for i in 0..n {
        reps[0].commit(&c[0], &[format!("v{i}").into_bytes()], i as i64);
    }
    reps[1] = Replica {
        peer: reps[1].peer,
        ..reps[0].clone()
    };
    let mut sim = Sim::new(reps, &[(0, 1)], 5);
    sim.heal_all();
    sim.quiesce(100_000);
    sim
}

fn reconnect_bytes(sim: &mut Sim) -> u64 {
    sim.cut(0);
    let before = sim.bytes;
    sim.heal(0);
    sim.quiesce(1_000_000);
    sim.bytes - before
}

#[test]
fn a_reconnect_with_nothing_new_costs_a_few_hundred_bytes_whatever_the_history_length() {
    let mut short = synced_pair(10);
    let mut long = synced_pair(10_000);
    let short_cost = reconnect_bytes(&mut short);
    let long_cost = reconnect_bytes(&mut long);
    // Two CRDTs shared, per side: Hello (77 bytes: version, key, nonce), Proof (74: a
    // signature) and one Heads per CRDT (75: the key and one head), which is also the
    // subscription (protocol 3; a separate Subscribe of both keys cost 77 bytes a side).
    // The bound was 700 + 2 × 124 with that Subscribe.
    eprintln!("reconnect with nothing new: {short_cost} bytes (10 commits), {long_cost} (10^4)");
    assert!(
        short_cost <= 2 * (77 + 74 + 2 * 75),
        "short history reconnect: {short_cost} bytes"
    );
    assert_eq!(
        short_cost, long_cost,
        "cost must not depend on history length"
    );
    long.assert_converged(&crdts()[..1]);
}

fn diverged_reconnect_bytes(n: usize, keep_hints: bool) -> u64 {
    let mut sim = synced_pair(n);
    if !keep_hints {
        sim.replicas.iter_mut().for_each(|r| r.hints.clear());
    }
    let c = crdts();
    sim.cut(0);
    for i in 0..3 {
        sim.replicas[0].commit(&c[0], &[format!("a{i}").into_bytes()], 1_000_000 + i);
        sim.replicas[1].commit(&c[0], &[format!("b{i}").into_bytes()], 2_000_000 + i);
    }
    let before = sim.bytes;
    sim.heal(0);
    sim.quiesce(1_000_000);
    sim.assert_converged(&c[..1]);
    sim.bytes - before
}

#[test]
fn a_diverged_reconnect_costs_the_missing_commits_not_the_history() {
    let short = diverged_reconnect_bytes(10, true);
    let long = diverged_reconnect_bytes(10_000, true);
    // The persisted hint finds the common frontier in one round, so only a handful of ids
    // more are exchanged for the long history.
    eprintln!("diverged reconnect (3+3 new commits): {short} bytes over 10, {long} over 10^4");
    assert!(
        long < 4_000,
        "diverged reconnect over 10^4 commits: {long} bytes"
    );
    assert!(long <= short + 512, "short {short} vs long {long} bytes");
}

#[test]
fn without_a_hint_a_diverged_reconnect_grows_only_logarithmically_with_history() {
    let short = diverged_reconnect_bytes(10, false);
    let long = diverged_reconnect_bytes(10_000, false);
    eprintln!("diverged reconnect without hint: {short} bytes over 10, {long} over 10^4");
    // Exponentially spaced samples: about log2(10^4) = 14 more ids per side and round.
    assert!(long < short + 3_000, "short {short} vs long {long} bytes");
}

#[test]
fn a_stale_hint_from_a_wiped_peer_is_not_trusted() {
    let mut sim = synced_pair(50);
    let c = crdts();
    sim.cut(0);
    // Replica 1 loses its store but keeps its peer id; replica 0 still holds the old hint.
    let peer = sim.replicas[1].peer;
    sim.replicas[1] = Replica::new(peer, crdts());
    sim.replicas[1].commit(&c[0], &[b"fresh".to_vec()], 7);
    sim.replicas[0].commit(&c[0], &[b"more".to_vec()], 8);
    assert!(!sim.replicas[0].hints.is_empty(), "a hint was saved");
    sim.heal(0);
    sim.quiesce(1_000_000);
    sim.assert_converged(&c);
    assert!(sim.rejects.is_empty(), "{:?}", sim.rejects);
}

#[derive(Clone, Debug)]
enum Op {
    Commit {
        replica: usize,
        crdt: usize,
        seed: u64,
    },
    Deliver(u8),
    Cut(usize),
    Heal(usize),
    Faults(u8, u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..5, 0usize..2, any::<u64>())
            .prop_map(|(replica, crdt, seed)| Op::Commit { replica, crdt, seed }),
        4 => any::<u8>().prop_map(Op::Deliver),
        1 => (0usize..10).prop_map(Op::Cut),
        1 => (0usize..10).prop_map(Op::Heal),
        1 => (0u8..30, 0u8..30, 0u8..50).prop_map(|(d, u, r)| Op::Faults(d, u, r)),
    ]
}

fn cases() -> u32 {
    if std::env::var_os("CI").is_some() {
        24
    } else {
        96
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn replicas_converge_after_any_schedule_of_faults_once_links_heal(
        n in 3usize..=5,
        topology in 0usize..4,
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let edges = match topology {
            0 => line(n),
            1 => ring(n),
            2 => star(n),
            _ => mesh(n),
        };
        let mut sim = Sim::new(replicas(n), &edges, seed);
        sim.heal_all();
        let c = crdts();
        for (ts, op) in ops.into_iter().enumerate() {
            match op {
                Op::Commit { replica, crdt, seed } => {
                    sim.local_commit(replica % n, &c[crdt], &params(seed), ts as i64)
                }
                Op::Deliver(k) => {
                    for _ in 0..k {
                        sim.step();
                    }
                }
                Op::Cut(l) => sim.cut(l % edges.len()),
                Op::Heal(l) => sim.heal(l % edges.len()),
                Op::Faults(drop, duplicate, reorder) => {
                    sim.faults = Faults {
                        drop: drop.into(),
                        duplicate: duplicate.into(),
                        reorder: reorder.into(),
                    }
                }
            }
        }
        sim.faults = Faults::default();
        sim.heal_all();
        let rejects = sim.rejects.len();
        sim.quiesce(2_000_000);
        sim.assert_converged(&c);
        prop_assert_eq!(sim.rejects.len(), rejects, "rejects on a reliable network: {:?}", sim.rejects);
        prop_assert!(sim.max_unacked <= sim.flow.window, "{} batches unacknowledged", sim.max_unacked);
    }
}

/// Replica 0 holds `n` commits of the first CRDT, replica 1 none; each batch carries one commit.
fn catch_up(n: usize) -> Sim {
    let mut reps = replicas(2);
    let c = crdts();
    for i in 0..n {
        reps[0].commit(&c[0], &[format!("v{i}").into_bytes()], i as i64);
    }
    let mut sim = Sim::new(reps, &[(0, 1)], 6);
    sim.flow.batch_bytes = 1;
    sim
}

/// Heals the link and delivers until replica 0 has sent its first batches, then replica 1
/// stops reading and the network settles.
fn receiver_stops_reading(sim: &mut Sim) {
    sim.heal_all();
    while sim.flow(0, 0).unacked() == 0 {
        assert!(sim.step(), "the catch-up never started");
    }
    sim.pause(0, 1, true);
    sim.quiesce(100_000);
}

/// Frames of `kind` waiting to be read by end `to` of link 0.
fn queued(sim: &Sim, to: usize, kind: &str) -> usize {
    sim.links[0].queues[to]
        .iter()
        .filter(|f| sim.codec.decode(f).expect("own frame").kind() == kind)
        .count()
}

#[test]
fn a_slow_peer_fills_the_window_then_the_sender_stops_until_it_acknowledges() {
    let n = 40;
    let mut sim = catch_up(n);
    let window = sim.flow.window;
    receiver_stops_reading(&mut sim);
    // The sender stopped with a full window: `window` batches wait, the rest is held back.
    assert!(sim.flow(0, 0).window_full());
    assert_eq!(sim.flow(0, 0).unacked(), window);
    assert_eq!(queued(&sim, 1, "ping"), window as usize);
    assert_eq!(queued(&sim, 1, "commits"), window as usize);
    assert_eq!(sim.flow(0, 0).queued(), n - window as usize);
    // The receiver reads them all; its acknowledgements wait unread: nothing more is sent.
    sim.pause(0, 1, false);
    sim.pause(0, 0, true);
    sim.quiesce(100_000);
    assert_eq!(queued(&sim, 0, "pong"), window as usize);
    assert_eq!(sim.flow(0, 0).queued(), n - window as usize);
    assert_eq!(
        sim.replicas[1].crdts[&crdts()[0]].nodes.len(),
        window as usize + 1,
        "the root and one commit per batch read"
    );
    // The sender reads the acknowledgements: one more batch for each.
    sim.pause(0, 1, true);
    sim.pause(0, 0, false);
    sim.quiesce(100_000);
    assert_eq!(queued(&sim, 1, "ping"), window as usize);
    assert_eq!(sim.flow(0, 0).queued(), n - 2 * window as usize);
    // Both read again: the catch-up completes without ever exceeding the window.
    sim.pause(0, 1, false);
    sim.quiesce(100_000);
    sim.assert_converged(&crdts());
    assert_eq!(sim.max_unacked, window);
    assert!(sim.closes.is_empty(), "{:?}", sim.closes);
}

#[test]
fn with_the_window_full_later_catch_ups_queue_behind_it_and_go_out_once_acknowledged() {
    let mut sim = Sim::new(replicas(2), &[(0, 1)], 7);
    sim.heal_all();
    sim.quiesce(100_000);
    let c = crdts();
    let window = sim.flow.window as usize;
    sim.pause(0, 1, true);
    // Each local commit is a catch-up of one batch; the first `window` fill the window.
    for i in 0..window + 6 {
        sim.local_commit(0, &c[i % 2], &params(i as u64), i as i64);
    }
    assert!(sim.flow(0, 0).window_full());
    assert_eq!(queued(&sim, 1, "commits"), window);
    assert_eq!(sim.flow(0, 0).queued(), 6, "six catch-ups wait their turn");
    sim.pause(0, 1, false);
    sim.quiesce(100_000);
    sim.assert_converged(&c);
    assert_eq!(sim.max_unacked, window as u64);
    assert!(sim.rejects.is_empty(), "{:?}", sim.rejects);
}

#[test]
fn a_peer_that_acknowledges_nothing_within_the_limit_is_closed_with_the_reason() {
    let mut sim = catch_up(40);
    let window = sim.flow.window;
    let limit = sim.flow.stall_timeout;
    receiver_stops_reading(&mut sim);
    sim.advance(limit);
    sim.check_stalls();
    assert!(sim.closes.is_empty(), "the limit itself is not yet a stall");
    sim.advance(Duration::from_millis(1));
    sim.check_stalls();
    assert_eq!(sim.closes.len(), 1, "{:?}", sim.closes);
    let reason = &sim.closes[0];
    assert!(
        reason.starts_with("replica 0: peer is not reading (slow consumer)")
            && reason.contains(&format!("{window} batches unacknowledged for {limit:?}")),
        "closed with: {reason}"
    );
    assert!(sim.links[0].sessions.is_none(), "the link is closed");
}

#[test]
fn a_peer_that_keeps_acknowledging_and_a_quiet_link_are_never_stalled() {
    let n = 40;
    let mut sim = catch_up(n);
    let limit = sim.flow.stall_timeout;
    sim.heal_all();
    // The catch-up takes many times the limit, but every batch is acknowledged within it.
    let mut steps = 0u32;
    while sim.step() {
        sim.advance(limit / 50);
        sim.check_stalls();
        steps += 1;
    }
    assert!(limit / 50 * steps > 2 * limit, "only {steps} steps");
    sim.assert_converged(&crdts());
    assert!(sim.closes.is_empty(), "{:?}", sim.closes);
    // Nothing outstanding: waiting is no stall, however long.
    sim.advance(100 * limit);
    sim.check_stalls();
    assert!(sim.closes.is_empty(), "{:?}", sim.closes);
}

#[test]
fn a_catch_up_announces_its_heads_only_after_its_last_batch() {
    let n = 25;
    let mut sim = catch_up(n);
    sim.log = Some(Vec::new());
    sim.heal_all();
    sim.quiesce(100_000);
    sim.assert_converged(&crdts());
    let sent: Vec<&str> = sim
        .log
        .iter()
        .flatten()
        .filter(|(l, side, _)| *l == 0 && *side == 0)
        .map(|(_, _, kind)| *kind)
        .collect();
    let first = sent
        .iter()
        .position(|k| *k == "commits")
        .expect("a catch-up");
    let catch_up = &sent[first..];
    let count = |kind: &str| catch_up.iter().filter(|k| **k == kind).count();
    assert_eq!(count("commits"), n, "one batch per commit: {catch_up:?}");
    assert_eq!(count("ping"), n, "each batch ends with a ping");
    assert_eq!(count("heads"), 1, "heads once: {catch_up:?}");
    let heads = catch_up.iter().position(|k| *k == "heads");
    let last_commits = catch_up.iter().rposition(|k| *k == "commits");
    assert!(
        heads > last_commits,
        "heads after the last batch: {catch_up:?}"
    );
}
