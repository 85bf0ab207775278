//! Replication benchmarks (plain timing, `harness = false`):
//! 1. reconnect with nothing new vs the original's whole-graph resend (bytes);
//! 2. catch-up of an empty replica: throughput and wire bytes vs raw payload bytes;
//! 3. decoding a full `Commits` frame with pre-validation and re-hashing vs plain `rmp-serde`.
//!
//! `BENCH_QUICK=1` shrinks the history so the run takes a few seconds.

#[path = "../tests/sync/support/mod.rs"]
mod sync_support;

use std::time::Instant;

use replikativ::crdt::CrdtKey;
use replikativ::protocol::{Blob, Codec, Message};
use replikativ::sync::{BatchLimits, GraphView, plan_frames};
use sync_support::dag::Replica;
use sync_support::net::Sim;
use uuid::Uuid;

fn key() -> CrdtKey {
    CrdtKey::new("mail:bench@x.org", Uuid::from_u128(1))
}

fn history(n: usize) -> Replica {
    let mut r = Replica::new(Uuid::from_u128(10), vec![key()]);
    for i in 0..n {
        r.commit(
            &key(),
            &[format!("tweet number {i} with some text").into_bytes()],
            i as i64,
        );
    }
    r
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let n = if quick { 1_000 } else { 10_000 };
    let full = history(n);

    // 1. Reconnect with nothing new.
    let mut other = full.clone();
    other.peer = Uuid::from_u128(11);
    let mut sim = Sim::new(vec![full.clone(), other], &[(0, 1)], 1);
    sim.heal_all();
    sim.quiesce(10_000_000);
    sim.cut(0);
    let before = sim.bytes;
    let t = Instant::now();
    sim.heal(0);
    sim.quiesce(10_000_000);
    let reconnect = sim.bytes - before;
    let reconnect_time = t.elapsed();
    let dag = &full.crdts[&key()];
    let all = dag.commits_between(&[], &dag.heads());
    let whole: u64 = plan_frames(
        &key(),
        full.load(&key(), &all),
        dag.heads(),
        &BatchLimits::default(),
    )
    .expect("plan")
    .iter()
    .map(|m| Codec::default().encode(m).expect("encode").len() as u64)
    .sum();
    println!(
        "reconnect, nothing new, {n} commits: {reconnect} bytes in {reconnect_time:?}; whole-graph resend {whole} bytes; ratio {:.0}x fewer bytes",
        whole as f64 / reconnect as f64
    );

    // 2. Catch-up of an empty replica.
    let empty = Replica::new(Uuid::from_u128(12), vec![key()]);
    let mut sim = Sim::new(vec![full.clone(), empty], &[(0, 1)], 2);
    let t = Instant::now();
    sim.heal_all();
    sim.quiesce(10_000_000);
    let elapsed = t.elapsed();
    sim.assert_converged(&[key()]);
    let payload: u64 = full
        .load(&key(), &all)
        .iter()
        .map(|c| (c.bytes.len() + c.values.iter().map(|(_, v)| v.len()).sum::<usize>()) as u64)
        .sum();
    println!(
        "catch-up of {n} commits: {:?} ({:.0} commits/s, {} frames), {} wire bytes vs {payload} payload bytes: overhead ratio {:.2}",
        elapsed,
        n as f64 / elapsed.as_secs_f64(),
        sim.frames,
        sim.bytes,
        sim.bytes as f64 / payload as f64
    );

    // 3. Decoding one large Commits frame.
    let blobs: Vec<Blob> = full
        .load(&key(), &all)
        .into_iter()
        .map(|c| Blob::new(c.bytes))
        .collect();
    let msg = Message::Commits {
        crdt: key(),
        commits: blobs,
        signatures: Vec::new(),
    };
    let codec = Codec::default();
    let frame = codec.encode(&msg).expect("encode");
    let rounds = if quick { 20 } else { 100 };
    let t = Instant::now();
    for _ in 0..rounds {
        codec.decode(&frame).expect("decode");
    }
    let checked = t.elapsed() / rounds;
    let t = Instant::now();
    for _ in 0..rounds {
        let _: Message = rmp_serde::from_slice(&frame).expect("decode");
    }
    let plain = t.elapsed() / rounds;
    println!(
        "decode {}-byte Commits frame ({n} commits): checked {checked:?}, plain rmp-serde {plain:?}; ratio {:.2}",
        frame.len(),
        checked.as_secs_f64() / plain.as_secs_f64()
    );
}
