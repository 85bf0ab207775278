//! CDVCS core benchmark: cost of applying one new commit (a downstream op) to graphs of
//! growing size, whole-graph history, delta computation, and bytes of memory per commit, each
//! against a plain `HashMap<Id, Vec<Id>>` baseline measured in the same run.
//!
//! Then signed history (issue 15): signing and verifying one commit — the signature check,
//! the writer rule's judgement in an owned CDVCS — and Ed25519 batch verification against
//! one-by-one checks, in the same run.
//!
//! `cargo bench --bench crdt` (full: 10^3, 10^5, 10^6 commits; 10^4 signed commits);
//! `BENCH_QUICK=1` for a few seconds' run (10^3, 10^4; 500 signed commits). Prints markdown
//! table rows for BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use replikativ::Id;
use replikativ::crdt::authorship::{AuthorKeys, Authorship, Writers, authorship, grant_write};
use replikativ::crdt::{Cdvcs, CdvcsOp, Commit, CrdtKey, EncodedCommit, Transaction};
use replikativ::identity::Keypair;

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
    verification(if quick { 500 } else { 10_000 });
}

/// A chain of `n` commits by `by` (its key the author) on top of `parent`, each with one
/// transaction, signed when `sign`.
fn chain(parent: Id, n: usize, by: &Keypair, author: &str, sign: bool) -> Vec<EncodedCommit> {
    let mut parent = parent;
    (0..n)
        .map(|i| {
            let c = Commit {
                parents: vec![parent],
                transactions: vec![Transaction {
                    op: "add-tweet".into(),
                    params: id(i as u64),
                }],
                author: author.to_owned(),
                ts: i as i64,
            }
            .encode();
            let c = if sign { c.signed(by) } else { c };
            parent = c.id;
            c
        })
        .collect()
}

/// What a commit signature signs (`authorship`'s message; checked below against the
/// product's own verification of the same signatures).
fn signed_message(id: &Id) -> Vec<u8> {
    let mut m = b"replikativ commit signature v1\0".to_vec();
    m.extend_from_slice(id.as_bytes());
    m
}

/// Per commit: signing, the signature check (`authorship`), the writer rule's judgement in
/// an owned CDVCS (`Writers::judge`), and the unsigned baseline; then Ed25519 batch
/// verification of the same signatures against one-by-one `verify_strict`.
fn verification(n: usize) {
    use ed25519_dalek::{Signature, VerifyingKey};

    let owner = Keypair::from_seed([1; 32]);
    let writer = Keypair::from_seed([2; 32]);
    let owned = CrdtKey::new(owner.public().to_string(), uuid::Uuid::from_u128(0x15));
    let open = CrdtKey::new("mail:bench@replikativ.io", uuid::Uuid::from_u128(0x15));

    // Owned: the root, the owner's grant to the writer, then n commits by the writer.
    let root = Commit::root(&owned);
    let (grant, _) = grant_write(&writer.public());
    let grant = Commit {
        parents: vec![root.id],
        transactions: vec![grant],
        author: owner.public().to_string(),
        ts: 0,
    }
    .encode()
    .signed(&owner);
    let unsigned = chain(grant.id, n, &writer, &writer.public().to_string(), false);
    let t = Instant::now();
    let signed: Vec<EncodedCommit> = unsigned.into_iter().map(|c| c.signed(&writer)).collect();
    let sign_t = t.elapsed();
    let mut rule = Writers::new(&owned);
    let who = authorship(&owned, &root.id, &root.commit, None).expect("root");
    rule.judge(&root.id, &root.commit, who)
        .expect("root judged");
    let who =
        authorship(&owned, &grant.id, &grant.commit, grant.signature.as_ref()).expect("grant");
    rule.judge(&grant.id, &grant.commit, who)
        .expect("grant judged");

    let t = Instant::now();
    let whos: Vec<Authorship> = signed
        .iter()
        .map(|c| authorship(&owned, &c.id, &c.commit, c.signature.as_ref()).expect("signed"))
        .collect();
    let check_t = t.elapsed();
    assert!(
        whos.iter()
            .all(|w| *w == Authorship::Signed(writer.public()))
    );
    // What a replica does: the author's key decoded once per batch.
    let t = Instant::now();
    let mut keys = AuthorKeys::default();
    keys.learn(signed.iter().map(|c| c.commit.author.as_str()));
    for c in &signed {
        let who = keys.authorship(&owned, &c.id, &c.commit, c.signature.as_ref());
        assert_eq!(black_box(who), Ok(Authorship::Signed(writer.public())));
    }
    let cached_t = t.elapsed();
    let t = Instant::now();
    for (c, who) in signed.iter().zip(&whos) {
        rule.judge(&c.id, &c.commit, *who)
            .expect("a granted writer");
    }
    let judge_t = t.elapsed();

    // The baseline: the same commits unsigned, by an author name, in an open CDVCS.
    let plain = chain(Commit::root(&open).id, n, &writer, "bench", false);
    let t = Instant::now();
    for c in &plain {
        let who = authorship(&open, &c.id, &c.commit, None).expect("unsigned in an open CDVCS");
        assert_eq!(black_box(who), Authorship::Unsigned);
    }
    let unsigned_t = t.elapsed();

    println!("\n| signed history, {n} commits | µs per commit |");
    println!("|---|---:|");
    println!(
        "| sign (`EncodedCommit::signed`) | {:.2} |",
        per(sign_t, n) / 1e3
    );
    println!(
        "| signature check (`authorship`, signed, owned CDVCS) | {:.2} |",
        per(check_t, n) / 1e3
    );
    println!(
        "| signature check, author keys decoded once (`AuthorKeys::authorship`, as a replica checks) | {:.2} |",
        per(cached_t, n) / 1e3
    );
    println!(
        "| writer rule (`Writers::judge`, a granted writer) | {:.3} |",
        per(judge_t, n) / 1e3
    );
    println!(
        "| check + judgement, as a replica does both | {:.2} |",
        (per(cached_t, n) + per(judge_t, n)) / 1e3
    );
    println!(
        "| baseline: `authorship` of an unsigned commit, open CDVCS | {:.3} |",
        per(unsigned_t, n) / 1e3
    );

    // Batch verification of the same signatures (one author, as in a catch-up).
    let key = VerifyingKey::from_bytes(writer.public().as_bytes()).expect("a valid key");
    let messages: Vec<Vec<u8>> = signed.iter().map(|c| signed_message(&c.id)).collect();
    let sigs: Vec<Signature> = signed
        .iter()
        .map(|c| Signature::from_bytes(&c.signature.expect("signed")))
        .collect();
    let t = Instant::now();
    for (m, s) in messages.iter().zip(&sigs) {
        key.verify_strict(m, s).expect("valid");
    }
    let strict_t = t.elapsed();
    let t = Instant::now();
    for (m, s) in messages.iter().zip(&sigs) {
        VerifyingKey::from_bytes(writer.public().as_bytes())
            .expect("a valid key")
            .verify_strict(m, s)
            .expect("valid");
    }
    let strict_decode_t = t.elapsed();
    println!(
        "| `verify_strict` alone, key decoded once | {:.2} |",
        per(strict_t, n) / 1e3
    );
    println!(
        "| `verify_strict` with the key decoded per signature | {:.2} |",
        per(strict_decode_t, n) / 1e3
    );

    println!(
        "\n| batch size | `verify_batch` µs/signature | + checks for `verify_strict`'s verdicts µs/signature | one-by-one `verify_strict` µs/signature | batch / one-by-one | batch + checks / one-by-one |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let one = per(strict_t, n);
    for size in [16, 64, 256, 1024] {
        if size > n {
            continue;
        }
        let chunks = n / size;
        let keys = vec![key; size];
        let t = Instant::now();
        for c in 0..chunks {
            let range = c * size..(c + 1) * size;
            let ms: Vec<&[u8]> = messages[range.clone()].iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&ms, &sigs[range], &keys).expect("a valid batch");
        }
        let batch_t = t.elapsed();
        // What `verify_strict` refuses and the batch equation would not: a key or an R of
        // small order, a non-canonical R, and (the batch's random coefficients can cancel a
        // torsion component) any R with a torsion component. The key is checked once.
        let t = Instant::now();
        assert!(!key.is_weak());
        for c in 0..chunks {
            let range = c * size..(c + 1) * size;
            for s in &sigs[range.clone()] {
                let r = curve25519_dalek::edwards::CompressedEdwardsY(s.r_bytes().to_owned());
                let point = r.decompress().expect("R on the curve");
                assert!(
                    point.compress() == r && !point.is_small_order() && point.is_torsion_free()
                );
            }
            let ms: Vec<&[u8]> = messages[range.clone()].iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&ms, &sigs[range], &keys).expect("a valid batch");
        }
        let checked_t = t.elapsed();
        let done = chunks * size;
        println!(
            "| {size} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            per(batch_t, done) / 1e3,
            per(checked_t, done) / 1e3,
            one / 1e3,
            per(batch_t, done) / one,
            per(checked_t, done) / one,
        );
    }
}
