//! Many CDVCSs per node (`BENCH_ONLY=mirror`): a store holding `n` CDVCSs of `commits` signed
//! commits each (10^4 × 10; quick: 10^3 × 10), written straight into the store. Measured:
//! - node start on that store and its RSS (a child process: this bench re-executed with
//!   `--rss mirror-start <n> <dir>`), per CDVCS above an empty node's;
//! - a mirror catching up every CDVCS over one connection (time until its store holds every
//!   CDVCS with the holder's heads);
//! - the mirror's reconnect with nothing new: websocket payload both ways (frames counted by
//!   the node, the HTTP upgrade not) and time until its session has settled;
//! - a reconnect after new commits in 10 CDVCSs: payload and time until level.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use replikativ::crdt::{Cdvcs, CrdtKey, Transaction};
use replikativ::id::Id;
use replikativ::identity::Keypair;
use replikativ::node::Node;
use replikativ::store::{Store, WriteBatch, keys};
use replikativ::tweets::{ADD_TWEET, encode_params};
use uuid::Uuid;

use crate::common::{quiet_wire_bytes, secs, thousands, wire_bytes};

const LIMIT: Duration = Duration::from_secs(1800);

/// The `i`th CDVCS of the bench.
pub fn key_of(i: usize) -> CrdtKey {
    CrdtKey::new(
        "mail:mirror@replikativ.io",
        Uuid::from_u128(0x1_0000 + i as u128),
    )
}

/// Writes `n` CDVCSs of `commits` one-tweet commits signed by `signer` into a fresh store in
/// `dir`; answers each CDVCS's heads (the oracle).
pub fn build(dir: &Path, n: usize, commits: usize, signer: &Keypair) -> BTreeMap<CrdtKey, Vec<Id>> {
    let store = Store::open(dir).expect("open store");
    let author = signer.public().to_string();
    let enc = |v: &Vec<Id>| rmp_serde::to_vec(v).expect("encode");
    let mut out = BTreeMap::new();
    let mut batch = WriteBatch::new();
    for i in 0..n {
        let k = key_of(i);
        let (mut state, root) = Cdvcs::new(&k);
        batch.put_value(root.bytes.clone());
        batch.put_state(
            keys::graph_entry(&k.user, &k.id, &root.id),
            enc(&Vec::new()),
        );
        batch.put_state(keys::meta(&k.user, &k.id), b"cdvcs".to_vec());
        for c in 0..commits {
            let params = encode_params(
                &serde_json::json!({"id": format!("{i}-{c}"), "text": format!("tweet {c} of {i}")}),
            );
            let tx = Transaction {
                op: ADD_TWEET.into(),
                params: batch.put_value(params),
            };
            let (commit, op) = state
                .prepare_commit(&author, c as i64, vec![tx])
                .expect("prepare");
            let commit = commit.signed(signer);
            batch.put_value(commit.bytes.clone());
            batch.put_state(
                keys::graph_entry(&k.user, &k.id, &commit.id),
                enc(&commit.commit.parents),
            );
            if let Some(signature) = &commit.signature {
                batch.put_state(keys::commit_signature(&commit.id), signature.to_vec());
            }
            state.downstream(&op).expect("apply");
        }
        let heads: Vec<Id> = state.heads().iter().copied().collect();
        batch.put_state(keys::heads(&k.user, &k.id), enc(&heads));
        out.insert(k, heads);
        if (i + 1) % 500 == 0 || i + 1 == n {
            store.write(&batch).expect("write CDVCSs");
            batch = WriteBatch::new();
        }
    }
    out
}

/// A field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn node(dir: &Path, listen: bool, connect: Option<&str>, mirror: bool) -> Node {
    node_with(dir, listen, connect, mirror, false).await
}

/// Like [`node`]; `sequential`: received batches applied one at a time (the baseline).
async fn node_with(
    dir: &Path,
    listen: bool,
    connect: Option<&str>,
    mirror: bool,
    sequential: bool,
) -> Node {
    // A store may be held a moment after the node on it shut down: retry that.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut b = Node::builder()
            .name("mirror-bench")
            .store_dir(dir)
            .mirror(mirror)
            .sequential_applies_for_benchmark(sequential);
        if listen {
            b = b.listen("127.0.0.1:0");
        }
        if let Some(url) = connect {
            b = b.connect(url);
        }
        match b.start().await {
            Ok(node) => return node,
            Err(e) if Instant::now() < deadline => {
                eprintln!("retrying the start on {}: {e}", dir.display());
                actix_rt::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("node starts: {e}"),
        }
    }
}

/// The child: starts a node on `dir`, prints `start <seconds> <RSS before KiB> <RSS after
/// KiB> <seconds to start every replica> <RSS then KiB>` (the last two: what starting every
/// replica at node start, as before, cost).
pub fn child(dir: &Path) {
    // Opening the store alone first, to tell its share of the start.
    let before = status_kib("VmRSS:");
    let t = Instant::now();
    drop(Store::open(dir).expect("open store"));
    eprintln!(
        "store open alone: {:.3} s, RSS {} -> {} KiB",
        t.elapsed().as_secs_f64(),
        before,
        status_kib("VmRSS:")
    );
    actix_rt::System::new().block_on(async {
        let before = status_kib("VmRSS:");
        let t = Instant::now();
        let n = node(dir, true, None, false).await;
        let took = t.elapsed();
        let after = status_kib("VmRSS:");
        let keys = n.replicas().keys().expect("list");
        let t = Instant::now();
        n.replicas()
            .ensure_all(&keys)
            .await
            .expect("start every replica");
        let all = t.elapsed();
        println!(
            "start {} {before} {after} {} {}",
            took.as_secs_f64(),
            all.as_secs_f64(),
            status_kib("VmRSS:")
        );
        n.shutdown().await;
    });
}

/// Starts a child on `dir`: (start seconds, RSS before, RSS after, seconds to start every
/// replica, RSS then) in KiB.
fn spawn_start(dir: &Path) -> (f64, u64, u64, f64, u64) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["--rss", "mirror-start", "0"])
        .arg(dir)
        .output()
        .expect("run child");
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if line.starts_with("store open alone") {
            println!("({}: {line})", dir.display());
        }
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("start "))
        .expect("child reports its start");
    let p: Vec<&str> = line.split_whitespace().collect();
    (
        p[1].parse().unwrap_or(0.0),
        p[2].parse().unwrap_or(0),
        p[3].parse().unwrap_or(0),
        p[4].parse().unwrap_or(0.0),
        p[5].parse().unwrap_or(0),
    )
}

/// Every CDVCS's heads in `store` (the mirror's view, read from disk).
fn stored_heads(store: &Store) -> BTreeMap<CrdtKey, Vec<Id>> {
    let mut out = BTreeMap::new();
    for k in store.list_crdts().expect("list") {
        if let Some(raw) = store.get_state(&keys::heads(&k.user, &k.id)).expect("read") {
            let mut heads: Vec<Id> = rmp_serde::from_slice(&raw).expect("decode heads");
            heads.sort();
            out.insert(k, heads);
        }
    }
    out
}

fn sorted(oracle: &BTreeMap<CrdtKey, Vec<Id>>) -> BTreeMap<CrdtKey, Vec<Id>> {
    oracle
        .iter()
        .map(|(k, h)| {
            let mut h = h.clone();
            h.sort();
            (k.clone(), h)
        })
        .collect()
}

/// Waits until `node`'s store holds exactly `want`. The check runs on the nodes' thread:
/// it reads only the CDVCSs not yet level (a level one stays so, nothing else writes), so
/// that watching costs the catch-up little; the whole store is compared at the end.
async fn wait_mirrored(node: &Node, want: &BTreeMap<CrdtKey, Vec<Id>>) {
    let want = sorted(want);
    let deadline = Instant::now() + LIMIT;
    let mut pending: Vec<&CrdtKey> = want.keys().collect();
    let store = node.store();
    loop {
        pending.retain(|k| {
            let raw = store
                .get_state(&keys::heads(&k.user, &k.id))
                .expect("read heads");
            let mut heads: Vec<Id> = raw
                .map(|r| rmp_serde::from_slice(&r).expect("decode heads"))
                .unwrap_or_default();
            heads.sort();
            Some(&heads) != want.get(*k)
        });
        if pending.is_empty() && stored_heads(store) == want {
            return;
        }
        assert!(Instant::now() < deadline, "the mirror did not catch up");
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the scenario in `root` and prints the table.
pub async fn run(root: &Path, n: usize, commits: usize) {
    let holder = root.join("holder");
    let mirror = root.join("mirror");
    let signer = Keypair::generate().expect("a key");
    let t = Instant::now();
    let mut oracle = build(&holder, n, commits, &signer);
    println!(
        "\n## Many CDVCSs: {} CDVCSs × {commits} commits (built in {})",
        thousands(n as u64),
        secs(t.elapsed())
    );
    let (empty_start, empty_before, empty_after, _, _) = spawn_start(&root.join("empty"));
    let (start, before, after, all, loaded) = spawn_start(&holder);
    let per = (after.saturating_sub(before) as f64
        - empty_after.saturating_sub(empty_before) as f64)
        * 1024.0
        / n as f64;
    println!("| measure | figure |\n|---|---|");
    println!(
        "| node start, empty store | {} |",
        secs(Duration::from_secs_f64(empty_start))
    );
    println!(
        "| node start, {} CDVCSs | {} |",
        thousands(n as u64),
        secs(Duration::from_secs_f64(start))
    );
    println!("| RSS after start, empty store | {} KiB |", empty_after);
    println!(
        "| RSS after start, {} CDVCSs | {} KiB ({per:.0} bytes per CDVCS above the empty node) |",
        thousands(n as u64),
        after
    );
    println!(
        "| then starting every replica (what node start did before) | {} |",
        secs(Duration::from_secs_f64(all))
    );
    let per_loaded = (loaded.saturating_sub(before) as f64
        - empty_after.saturating_sub(empty_before) as f64)
        * 1024.0
        / n as f64;
    println!(
        "| RSS with every replica started | {loaded} KiB ({per_loaded:.0} bytes per CDVCS above the empty node) |"
    );

    // The baseline first: the same catch-up applying one batch at a time (as before batches
    // of many CDVCSs shared group commits), each from a fresh holder node on its own copy of
    // the holder's store (no replica started by the run before).
    let mut catch_ups = Vec::new();
    for (sequential, dir) in [
        (true, root.join("mirror-sequential")),
        (false, mirror.clone()),
    ] {
        let copy = root.join(format!("holder-{sequential}"));
        std::fs::create_dir_all(&copy).expect("holder copy");
        for entry in std::fs::read_dir(&holder).expect("holder dir") {
            let entry = entry.expect("holder file");
            std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy");
        }
        let a = node(&copy, true, None, false).await;
        let url = format!("ws://{}/", a.listen_addr().expect("listening"));
        let t = Instant::now();
        let b = node_with(&dir, false, Some(&url), true, sequential).await;
        wait_mirrored(&b, &oracle).await;
        catch_ups.push((t.elapsed(), wire_bytes(&b)));
        b.shutdown().await;
        drop(b);
        a.shutdown().await;
        drop(a);
    }
    let (base, _) = catch_ups[0];
    let (catch_up, bytes) = catch_ups[1];
    println!(
        "| mirror catch-up over one connection | {} ({:.1} MB both ways; one batch at a time, same run: {}, ratio {:.3}) |",
        secs(catch_up),
        bytes as f64 / 1e6,
        secs(base),
        catch_up.as_secs_f64() / base.as_secs_f64()
    );

    let a = node(&holder, true, None, false).await;
    let url = format!("ws://{}/", a.listen_addr().expect("listening"));
    let t = Instant::now();
    let b = node(&mirror, false, Some(&url), true).await;
    // Settled: the peer's heads of every CDVCS are known (a matching digest reports them).
    let deadline = Instant::now() + LIMIT;
    while !oracle
        .keys()
        .all(|k| b.peers().first_remote_heads(k).is_some())
    {
        assert!(Instant::now() < deadline, "the reconnect did not settle");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    let settled = t.elapsed();
    let quiet = quiet_wire_bytes(&b, Duration::from_millis(500)).await;
    println!(
        "| reconnect with nothing new: websocket payload both ways | {} bytes (settled in {}) |",
        quiet,
        secs(settled)
    );
    b.shutdown().await;
    drop(b);

    // New commits in 10 CDVCSs while the mirror is away.
    let stage = a.stage();
    for i in (0..n).step_by((n / 10).max(1)).take(10) {
        let k = key_of(i);
        let note = encode_params(&serde_json::json!({"id": format!("new-{i}"), "text": "new"}));
        stage
            .transact(&k, vec![(ADD_TWEET.into(), note)])
            .await
            .expect("transact");
        oracle.insert(k.clone(), a.replica(&k).expect("replica").heads());
    }
    let t = Instant::now();
    let b = node(&mirror, false, Some(&url), true).await;
    wait_mirrored(&b, &oracle).await;
    let level = t.elapsed();
    let quiet = quiet_wire_bytes(&b, Duration::from_millis(500)).await;
    println!(
        "| reconnect after new commits in 10 CDVCSs | {quiet} bytes, level in {} |",
        secs(level)
    );
    b.shutdown().await;
    drop(b);
    a.shutdown().await;
}
