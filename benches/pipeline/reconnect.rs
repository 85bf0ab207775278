//! Reconnect: a peer that was level with a holder of `history` commits restarts after the
//! holder made 0, 10 or 1,000 new commits. Measured: node start time, time from dialling until
//! level, and the bytes exchanged beyond the new commits and their values (the payload), once
//! with the persisted per-peer hint (same stores, same node ids) and once with the hints
//! deleted from the restarting peer's store. Histories are written straight into the store.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{
    build_history, forget_hints, key, pow10, quiet_wire_bytes, replica, secs, start_node,
    thousands, txs, url_of, wait_heads, wait_hint, wait_level,
};

const LIMIT: Duration = Duration::from_secs(600);

/// One reconnect measurement.
struct Round {
    start: Duration,
    sync: Duration,
    overhead: i64,
}

/// Restarts the peer on `dir` dialling `url`, waits until it holds `heads`.
/// With `hint`, waits (untimed) until the hint about that peer is saved before stopping.
async fn reconnect(
    dir: &Path,
    url: &str,
    heads: &[replikativ::Id],
    payload: u64,
    hint: Option<replikativ::identity::PublicKey>,
) -> Round {
    let t = Instant::now();
    let node = start_node("peer", dir, false, Some(url)).await;
    let start = t.elapsed();
    wait_level(&node, heads, LIMIT).await;
    let sync = t.elapsed() - start;
    let wire = quiet_wire_bytes(&node, Duration::from_millis(200)).await;
    if let Some(peer) = hint {
        wait_hint(&node, peer, heads, LIMIT).await;
    }
    node.shutdown().await;
    Round {
        start,
        sync,
        overhead: wire as i64 - payload as i64,
    }
}

/// Copies the store file of `from` into `to`.
pub fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    let name = replikativ::store::FILE_NAME;
    std::fs::copy(from.join(name), to.join(name)).expect("copy store");
}

/// Runs every `new` count over a history of `history` commits in `root`.
pub async fn run(root: &Path, history: usize, news: &[usize]) {
    let holder_dir = root.join("holder");
    let peer_dir = root.join("peer");
    build_history(&holder_dir, history);
    copy_store(&holder_dir, &peer_dir);
    let holder = start_node("holder", &holder_dir, true, None).await;
    let url = url_of(&holder);
    let holder_peer = holder.public_key();
    // First meeting: level already, the hints get saved on both sides.
    let heads = replica(&holder).heads();
    let peer = start_node("peer", &peer_dir, false, Some(&url)).await;
    wait_heads(&peer, &heads, LIMIT).await;
    wait_hint(&peer, holder_peer, &heads, LIMIT).await;
    peer.shutdown().await;
    drop(peer);

    let stage = holder.stage();
    let mut tweets = crate::common::TweetGen::new();
    for &new in news {
        let before = replica(&holder).heads();
        for _ in 0..new {
            stage
                .transact(&key(), txs(tweets.batch(1)))
                .await
                .expect("transact");
        }
        let heads = replica(&holder).heads();
        let payload = payload_bytes(&holder, &before, &heads);
        let cold_dir = root.join(format!("cold-{new}"));
        copy_store(&peer_dir, &cold_dir);
        forget_hints(&cold_dir);
        let warm = reconnect(&peer_dir, &url, &heads, payload, Some(holder_peer)).await;
        let cold = reconnect(&cold_dir, &url, &heads, payload, None).await;
        std::fs::remove_dir_all(&cold_dir).ok();
        println!(
            "| {} | {} | {} B | {} B | {} B | {} | {} | {} | {} |",
            pow10(history),
            new,
            thousands(payload),
            warm.overhead,
            cold.overhead,
            secs(warm.start),
            secs(warm.sync),
            secs(cold.start),
            secs(cold.sync),
        );
    }
    holder.shutdown().await;
}

/// Bytes of the commits between `before` and `after` and the values they reference.
fn payload_bytes(
    node: &replikativ::Node,
    before: &[replikativ::Id],
    after: &[replikativ::Id],
) -> u64 {
    let state = replica(node).state();
    let ids = state
        .read()
        .expect("state")
        .commits_between(before, after)
        .expect("between");
    ids.iter()
        .map(|id| {
            let c = node.peers().load_outgoing(id).expect("load");
            c.bytes.len() as u64 + c.values.iter().map(|(_, v)| v.len() as u64).sum::<u64>()
        })
        .sum()
}

/// The table header.
pub fn header() {
    println!("\n### Reconnect after a restart\n");
    println!(
        "| history (commits) | new commits | payload | overhead with hint | overhead without hint | start (hint) | sync (hint) | start (no hint) | sync (no hint) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}
