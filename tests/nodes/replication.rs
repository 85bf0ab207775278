//! Replication between peers over real websockets (issue 5): both directions, relaying
//! through a chain, convergence after a partition, catching up after being offline, and a
//! server process that is killed and restarted while its clients reconnect by themselves.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::nodes::{
    client, commit_count, commit_range, heads, key, realizing_client, server, url, wait_converged,
    wait_realized_exactly,
};
use crate::common::proxy::Proxy;
use crate::common::wait::wait_until;
use replikativ::node::Node;

const T: Duration = Duration::from_secs(60);

#[actix_rt::test]
async fn two_peers_replicate_a_cdvcs_both_ways() {
    let k = key("mail:both@ways");
    let a = server(&k).await;
    let b = client(&url(&a), &k).await;

    commit_range(&a, &k, 0..20).await;
    wait_converged(&a, &b, &k, T).await;
    assert_eq!(commit_count(&b, &k), 21, "root and 20 commits from a");

    commit_range(&b, &k, 20..40).await;
    wait_converged(&a, &b, &k, T).await;
    assert_eq!(commit_count(&a, &k), 41, "b's commits reached a");
    assert_eq!(heads(&a, &k).len(), 1, "a linear history has one head");

    b.shutdown().await;
    a.shutdown().await;
}

#[actix_rt::test]
async fn a_chain_of_three_peers_relays_the_first_peers_commits_to_the_last() {
    let k = key("mail:chain@relay");
    let middle = server(&k).await;
    let first = client(&url(&middle), &k).await;
    let (last, sink) = realizing_client(&url(&middle), &k).await;

    commit_range(&first, &k, 0..50).await;
    wait_converged(&first, &last, &k, T).await;
    wait_realized_exactly(&sink, 50, T).await;
    assert_eq!(
        heads(&middle, &k),
        heads(&first, &k),
        "the middle peer holds them too"
    );

    // And back: the last peer's commits reach the first through the middle one.
    commit_range(&last, &k, 50..60).await;
    wait_converged(&first, &last, &k, T).await;
    wait_realized_exactly(&sink, 60, T).await;

    for n in [last, first, middle] {
        n.shutdown().await;
    }
}

#[actix_rt::test]
async fn two_peers_that_committed_while_apart_converge_to_the_same_two_heads() {
    let k = key("mail:apart@partition");
    let a = server(&k).await;
    let proxy = Proxy::start(a.listen_addr().expect("listens"));
    let b = client(&proxy.url(), &k).await;
    commit_range(&a, &k, 0..5).await;
    wait_converged(&a, &b, &k, T).await;

    // Partition: refuse new connections and cut the live one.
    proxy.faults.refuse.store(true, Ordering::SeqCst);
    proxy.cut_all();
    wait_until(
        "b to notice the partition",
        T,
        || b.peers().first_remote_heads(&k).is_none(),
        || "b still sees a connected peer".into(),
    )
    .await;
    let head_a = *commit_range(&a, &k, 100..110)
        .await
        .last()
        .expect("commits");
    let head_b = *commit_range(&b, &k, 200..207)
        .await
        .last()
        .expect("commits");
    assert_ne!(heads(&a, &k), heads(&b, &k), "apart, they differ");

    proxy.faults.refuse.store(false, Ordering::SeqCst);
    wait_converged(&a, &b, &k, T).await;
    let both = heads(&a, &k);
    assert_eq!(both.len(), 2, "two concurrent heads: {both:?}");
    assert!(both.contains(&head_a) && both.contains(&head_b));
    assert_eq!(commit_count(&a, &k), 1 + 5 + 10 + 7);

    // A merge on one side resolves the conflict on both.
    let merged = a
        .stage()
        .merge(&k, both.iter().copied().collect(), Vec::new())
        .await
        .expect("merge");
    wait_converged(&a, &b, &k, T).await;
    assert_eq!(heads(&b, &k).into_iter().collect::<Vec<_>>(), vec![merged]);

    b.shutdown().await;
    a.shutdown().await;
}

#[actix_rt::test]
async fn a_peer_that_was_offline_while_a_thousand_commits_were_made_catches_up() {
    let k = key("mail:offline@catchup");
    let n = crate::common::iterations(1000, 1000) as u64;
    let a = server(&k).await;
    commit_range(&a, &k, 0..n).await;

    let proxy = Proxy::start(a.listen_addr().expect("listens"));
    let (b, sink) = realizing_client(&proxy.url(), &k).await;
    wait_converged(&a, &b, &k, T).await;
    assert_eq!(commit_count(&b, &k), n as usize + 1);
    wait_realized_exactly(&sink, n as usize, T).await;

    // A reconnect with nothing new costs a handshake, not the history.
    let before = b.peers().metrics().bytes_in.load(Ordering::Relaxed);
    proxy.cut_all();
    wait_until(
        "b to reconnect and hear a's heads",
        T,
        || proxy.accepted.load(Ordering::SeqCst) >= 2 && b.peers().first_remote_heads(&k).is_some(),
        || format!("{} connections", proxy.accepted.load(Ordering::SeqCst)),
    )
    .await;
    let cost = b.peers().metrics().bytes_in.load(Ordering::Relaxed) - before;
    assert!(cost < 4096, "a reconnect received {cost} bytes");
    assert_eq!(
        sink.snapshot().ops.len(),
        n as usize,
        "nothing realized twice"
    );

    b.shutdown().await;
    a.shutdown().await;
}

/// Waits asynchronously (the in-process nodes keep running) until `port` accepts.
async fn wait_port_async(port: u16) {
    let end = std::time::Instant::now() + T;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(std::time::Instant::now() < end, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn spawn_peer(dir: &std::path::Path, port: u16) -> std::process::Child {
    let store = dir.join("store");
    let listen = format!("127.0.0.1:{port}");
    crate::common::spawn(
        &[
            "peer",
            "--store",
            store.to_str().expect("utf-8 path"),
            "--listen",
            &listen,
        ],
        dir,
        "peer.log",
    )
}

#[actix_rt::test]
async fn a_killed_and_restarted_server_is_rejoined_by_its_clients_by_themselves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = crate::common::free_port();
    let mut peer = spawn_peer(dir.path(), port);
    wait_port_async(port).await;
    let server_url = format!("ws://127.0.0.1:{port}/");

    let k = key("mail:restart@server");
    let writer: Node = client(&server_url, &k).await;
    let observer: Node = client(&server_url, &k).await;
    commit_range(&writer, &k, 0..10).await;
    // The observer is only connected to the server: converging proves the server has them.
    wait_converged(&writer, &observer, &k, T).await;

    crate::common::kill(&mut peer);
    commit_range(&writer, &k, 10..25).await;

    let mut peer = spawn_peer(dir.path(), port);
    wait_port_async(port).await;
    wait_converged(&writer, &observer, &k, T).await;
    assert_eq!(commit_count(&observer, &k), 26, "root and all 25 commits");

    observer.shutdown().await;
    writer.shutdown().await;
    crate::common::terminate(&peer);
    let status = crate::common::wait_exit(&mut peer, T);
    assert!(
        status.is_some_and(|s| s.success()),
        "the peer stops cleanly on SIGTERM: {status:?}\n{}",
        std::fs::read_to_string(dir.path().join("peer.log")).unwrap_or_default()
    );
}
