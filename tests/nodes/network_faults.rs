//! Network faults between two peers through the TCP fault proxy (issue 8): connections cut
//! after N bytes again and again, stalled, delayed and half-closed. Afterwards the peers
//! converge and a realizer behind the faulty link has applied every op exactly once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::nodes::{
    commit_count, commit_range, heads, key, realizing_client, realizing_client_with, server,
    wait_converged, wait_realized_exactly,
};
use crate::common::proxy::Proxy;
use crate::common::wait::wait_until;
use replikativ::Node;
use replikativ::node::StoreLocation;

const T: Duration = Duration::from_secs(90);

#[actix_rt::test]
async fn connections_cut_after_n_bytes_again_and_again_still_converge_and_realize_exactly_once() {
    let k = key("mail:cut@faults");
    let a = server(&k).await;
    let proxy = Proxy::start(a.listen_addr().expect("listens"));
    let (b, sink) = realizing_client(&proxy.url(), &k).await;
    cut_rounds(
        a,
        b,
        sink,
        proxy,
        &k,
        crate::common::iterations(8, 4) as u64,
    )
    .await;
}

/// The same over `wss://`: every cut tears a TLS session down mid-record, and each redial
/// negotiates TLS and authenticates again.
#[actix_rt::test]
async fn tls_connections_cut_again_and_again_still_converge_and_realize_exactly_once() {
    use replikativ::peer::tls::{ClientTls, ServerTls};
    let dir = tempfile::tempdir().expect("tempdir");
    let [ca, cert, tls_key] = crate::node::test_pki(dir.path());
    let k = key("mail:cut-tls@faults");
    let a = Node::builder()
        .name("server")
        .store(StoreLocation::Memory)
        .listen("127.0.0.1:0")
        .tls_server(ServerTls::load(&cert, &tls_key).expect("server TLS"))
        .cdvcs(k.clone())
        .start()
        .await
        .expect("start server node");
    let proxy = Proxy::start(a.listen_addr().expect("listens"));
    let port = proxy
        .url()
        .rsplit(':')
        .next()
        .expect("port")
        .trim_end_matches('/')
        .to_owned();
    let url = format!("wss://localhost:{port}/");
    let (b, sink) = realizing_client_with(&url, &k, |builder| {
        builder.tls_client(ClientTls::with_cas(&[&ca]).expect("CA"))
    })
    .await;
    cut_rounds(
        a,
        b,
        sink,
        proxy,
        &k,
        crate::common::iterations(4, 2) as u64,
    )
    .await;
}

/// Commits on `a` while the proxy between `a` and `b` cuts the connection after a growing
/// number of bytes, `rounds` times; then `b` converges and has realized every op once.
async fn cut_rounds(
    a: Node,
    b: Node,
    sink: replikativ::realize::MemorySink,
    proxy: Proxy,
    k: &replikativ::crdt::CrdtKey,
    rounds: u64,
) {
    let k = k.clone();
    commit_range(&a, &k, 0..100).await;
    let limits = [1_500u64, 6_000, 20_000, 40_000];
    let mut next = 100;
    for round in 0..rounds {
        let cuts = proxy.cuts.load(Ordering::SeqCst);
        let limit = limits[round as usize % 4];
        proxy.faults.cut_after.store(limit, Ordering::SeqCst);
        // Keep committing until this round's limit cuts the live connection.
        let end = std::time::Instant::now() + T;
        while proxy.cuts.load(Ordering::SeqCst) == cuts {
            assert!(
                std::time::Instant::now() < end,
                "round {round}: no cut; b holds {} commits",
                commit_count(&b, &k)
            );
            commit_range(&a, &k, next..next + 25).await;
            next += 25;
            let settle = std::time::Instant::now() + Duration::from_millis(500);
            while proxy.cuts.load(Ordering::SeqCst) == cuts && std::time::Instant::now() < settle {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(
        proxy.accepted.load(Ordering::SeqCst) as u64 >= rounds,
        "b redialled after each cut"
    );

    proxy.faults.cut_after.store(0, Ordering::SeqCst);
    wait_converged(&a, &b, &k, T).await;
    assert_eq!(commit_count(&b, &k), next as usize + 1);
    wait_realized_exactly(&sink, next as usize, T).await;

    b.shutdown().await;
    a.shutdown().await;
}

#[actix_rt::test]
async fn a_stalled_connection_delivers_everything_once_it_resumes() {
    let k = key("mail:stall@faults");
    let a = server(&k).await;
    let proxy = Proxy::start(a.listen_addr().expect("listens"));
    let (b, sink) = realizing_client(&proxy.url(), &k).await;
    commit_range(&a, &k, 0..10).await;
    wait_converged(&a, &b, &k, T).await;

    proxy.faults.stall.store(true, Ordering::SeqCst);
    let sent = a.peers().metrics().bytes_out.load(Ordering::Relaxed);
    commit_range(&a, &k, 10..60).await;
    wait_until(
        "a to send into the stalled link",
        T,
        || a.peers().metrics().bytes_out.load(Ordering::Relaxed) > sent,
        String::new,
    )
    .await;
    assert_ne!(
        heads(&a, &k),
        heads(&b, &k),
        "nothing passes a stalled link"
    );

    proxy.faults.stall.store(false, Ordering::SeqCst);
    wait_converged(&a, &b, &k, T).await;
    wait_realized_exactly(&sink, 60, T).await;
    assert_eq!(
        proxy.accepted.load(Ordering::SeqCst),
        1,
        "the stall did not drop the connection"
    );

    b.shutdown().await;
    a.shutdown().await;
}

#[actix_rt::test]
async fn a_slow_link_delays_but_loses_nothing() {
    let k = key("mail:delay@faults");
    let a = server(&k).await;
    let proxy = Proxy::start(a.listen_addr().expect("listens"));
    proxy.faults.delay_ms.store(40, Ordering::SeqCst);
    let (b, sink) = realizing_client(&proxy.url(), &k).await;
    let n = crate::common::iterations(200, 100) as u64;
    commit_range(&a, &k, 0..n).await;
    wait_converged(&a, &b, &k, T).await;
    wait_realized_exactly(&sink, n as usize, T).await;

    // Commits made on the far side travel back over the same slow link.
    let (b_first, a_first) = (n, n + 20);
    commit_range(&b, &k, b_first..a_first).await;
    wait_converged(&a, &b, &k, T).await;
    wait_realized_exactly(&sink, a_first as usize, T).await;

    b.shutdown().await;
    a.shutdown().await;
}

#[actix_rt::test]
async fn half_closed_connections_are_redialled_and_the_peers_converge() {
    let k = key("mail:half@faults");
    let a = server(&k).await;
    commit_range(&a, &k, 0..50).await;
    let proxy = Proxy::start(a.listen_addr().expect("listens"));
    // The server→client direction is shut after 4 000 bytes; the other stays open.
    proxy.faults.half_close.store(true, Ordering::SeqCst);
    proxy.faults.cut_after.store(4_000, Ordering::SeqCst);
    let (b, sink) = realizing_client(&proxy.url(), &k).await;

    let rounds = crate::common::iterations(4, 2);
    for round in 0..rounds {
        wait_until(
            "b to notice a half-closed connection and redial",
            T,
            || proxy.accepted.load(Ordering::SeqCst) > round + 1,
            || format!("{} connections", proxy.accepted.load(Ordering::SeqCst)),
        )
        .await;
    }
    proxy.faults.half_close.store(false, Ordering::SeqCst);
    proxy.faults.cut_after.store(0, Ordering::SeqCst);
    commit_range(&a, &k, 50..70).await;
    wait_converged(&a, &b, &k, T).await;
    wait_realized_exactly(&sink, 70, T).await;

    b.shutdown().await;
    a.shutdown().await;
}
