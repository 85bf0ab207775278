//! CDVCS core benchmark: cost of applying one new commit (a downstream op) to graphs of
//! growing size, whole-graph history, delta computation, and bytes of memory per commit, each
//! against a plain `HashMap<Id, Vec<Id>>` baseline measured in the same run.
//!
//! `cargo bench --bench crdt` (full: 10^3, 10^5, 10^6 commits); `BENCH_QUICK=1` for a few
//! seconds' run (10^3, 10^4). Prints markdown table rows for BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use replikativ::Id;
use replikativ::crdt::{Cdvcs, CdvcsOp};

/// Counts live heap bytes, to measure memory per commit.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn id(i: u64) -> Id {
    Id::of(&i.to_le_bytes())
}

/// A mostly linear history with a merge every 100 commits (of the commit 50 back), one head.
fn entries(n: u64) -> Vec<(Id, Vec<Id>)> {
    (0..n)
        .map(|i| {
            let parents = match i {
                0 => vec![],
                i if i % 100 == 0 && i >= 50 => vec![id(i - 1), id(i - 50)],
                i => vec![id(i - 1)],
            };
            (id(i), parents)
        })
        .collect()
}

fn per(d: Duration, k: usize) -> f64 {
    d.as_nanos() as f64 / k as f64
}

fn live_bytes_of<T>(build: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    let value = build();
    (value, LIVE.load(Ordering::Relaxed).saturating_sub(before))
}

fn naive_history(g: &HashMap<Id, Vec<Id>>, head: Id) -> Vec<Id> {
    let mut out = Vec::with_capacity(g.len());
    let mut seen: HashSet<Id> = HashSet::with_capacity(g.len());
    seen.insert(head);
    let mut stack = vec![(head, 0usize)];
    while let Some((cur, next)) = stack.last_mut() {
        let c = *cur;
        match g[&c].get(*next) {
            Some(p) => {
                *next += 1;
                if seen.insert(*p) {
                    stack.push((*p, 0));
                }
            }
            None => {
                out.push(c);
                stack.pop();
            }
        }
    }
    out
}

fn bench(n: u64, ops: usize) {
    let e = entries(n);
    let head = id(n - 1);

    let t = Instant::now();
    let (mut state, state_bytes) =
        live_bytes_of(|| Cdvcs::restore(e.clone(), vec![head]).expect("valid graph"));
    let restore = t.elapsed();
    let (mut plain, plain_bytes) = live_bytes_of(|| e.iter().cloned().collect::<HashMap<_, _>>());

    // One new commit per op on top of the head, as a replica receives them.
    let new: Vec<CdvcsOp> = (n..n + ops as u64)
        .map(|i| CdvcsOp {
            graph: vec![(id(i), vec![id(i - 1)])],
            heads: vec![id(i)],
        })
        .collect();
    let mut lat: Vec<u64> = Vec::with_capacity(ops);
    let t = Instant::now();
    for op in &new {
        let t1 = Instant::now();
        black_box(state.downstream(op).expect("applies"));
        lat.push(t1.elapsed().as_nanos() as u64);
    }
    let down = t.elapsed();
    lat.sort_unstable();
    let t = Instant::now();
    for op in &new {
        let (c, ps) = &op.graph[0];
        black_box(plain.insert(*c, ps.clone()));
    }
    let base_insert = t.elapsed();

    let tip = id(n + ops as u64 - 1);
    let t = Instant::now();
    let hist = state.history(&tip).expect("head");
    let hist_t = t.elapsed();
    let t = Instant::now();
    let naive = naive_history(&plain, tip);
    let naive_t = t.elapsed();
    assert_eq!(hist, naive, "history must match the naive walk");

    let t = Instant::now();
    let delta = state.commits_between(&[id(n - 1)], &[tip]).expect("known");
    let between_t = t.elapsed();
    assert_eq!(delta.len(), ops);

    let total = n as usize + ops;
    println!(
        "| {n:>9} | {:>7.0} | {:>7} | {:>7} | {:>7.0} | {:>5.2} | {:>7.1} | {:>7.1} | {:>5.2} | {:>9.1} | {:>6.0} | {:>6.0} | {:>5.2} | {:>7.0} |",
        per(down, ops),
        lat[ops / 2],
        lat[ops * 99 / 100],
        per(base_insert, ops),
        per(down, ops) / per(base_insert, ops),
        per(hist_t, total),
        per(naive_t, total),
        per(hist_t, total) / per(naive_t, total),
        between_t.as_secs_f64() * 1e6,
        state_bytes as f64 / n as f64,
        plain_bytes as f64 / n as f64,
        state_bytes as f64 / plain_bytes as f64,
        per(restore, n as usize),
    );
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let sizes: &[u64] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 100_000, 1_000_000]
    };
    let ops = if quick { 500 } else { 5_000 };
    println!(
        "| commits | downstream 1 commit mean ns | p50 ns | p99 ns | HashMap insert ns | ratio | history ns/commit | naive DFS ns/commit | ratio | commits_between({ops} new) µs | bytes/commit | HashMap bytes/commit | ratio | restore ns/commit |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        bench(n, ops);
    }
}
