//! Handshake cost, over `ws://` and `wss://` in the same run:
//! 1. time to connect and authenticate: a dialler (this process, the library's own
//!    [`Handshake`] with a fixed key) opens a loopback websocket to a listening node (TCP,
//!    for `wss://` TLS 1.3 against a certificate made in the run, the websocket upgrade),
//!    sends `Hello`, answers the node's `Hello` with `Proof`, verifies the node's `Proof`
//!    (bound to the TLS channel over `wss://`) and waits for the node's first message after
//!    it, its `Heads`: sent only once the node verified our proof and admitted our key. Timed
//!    from before the TCP connect until that `Heads` arrives; the median of many connections,
//!    each closed before the next. The client's TLS configuration is kept across connections,
//!    as a node's dialler keeps it across reconnects (rustls may resume sessions).
//! 2. a reconnect with nothing new between two nodes (both level, 10 commits), counted as
//!    websocket payload on the dialling node (every message of the exchange, handshake
//!    included; websocket, TLS and TCP framing excluded): the second meeting is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use awc::ws;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use replikativ::identity::Keypair;
use replikativ::peer::tls::ClientTls;
use replikativ::peer::tls_connector::{Target, TlsDial};
use replikativ::protocol::{Message, decode, encode};
use replikativ::sync::{Handshake, Role};

use crate::common::{
    NodeTls, build_history, quiet_wire_bytes, replica, start_node_tls, wait_level,
};
use crate::reconnect::copy_store;
use crate::replication::test_tls;

const LIMIT: Duration = Duration::from_secs(60);

/// The URL of `node`'s listener, `wss://localhost:…` with `tls`.
fn url(node: &replikativ::Node, tls: bool) -> String {
    let addr = node.listen_addr().expect("listening");
    match tls {
        true => format!("wss://localhost:{}/", addr.port()),
        false => format!("ws://{addr}/"),
    }
}

/// One connection: connect, authenticate both ways, until the listener's first `Heads`.
async fn connect_and_authenticate(url: &str, tls: &ClientTls, key: &Keypair) -> Duration {
    let t = Instant::now();
    let (mut io, binding) = if url.starts_with("wss://") {
        let target = Target::parse(url).expect("wss URL");
        let dial = TlsDial::new(tls.peers(), target.clone());
        let outcome = dial.outcome();
        let client = awc::Client::builder()
            .connector(awc::Connector::new().connector(dial))
            .finish();
        let (_resp, io) = client
            .ws(target.plain_url.as_str())
            .connect()
            .await
            .expect("wss connect");
        let binding = outcome.borrow_mut().binding.take().map(|b| b.0);
        assert!(binding.is_some(), "no TLS channel binding");
        (io, binding)
    } else {
        let (_resp, io) = awc::Client::new()
            .ws(url)
            .connect()
            .await
            .expect("ws connect");
        (io, None)
    };
    let mut handshake = Handshake::new(key.clone(), Role::Dialler, rand::random(), binding);
    let send = |msg: &Message| ws::Message::Binary(Bytes::from(encode(msg).expect("encode")));
    io.send(send(&handshake.hello())).await.expect("send hello");
    loop {
        let frame = io.next().await.expect("connection open").expect("frame");
        let ws::Frame::Binary(bytes) = frame else {
            panic!("unexpected frame {frame:?}");
        };
        let msg = decode(&bytes).expect("decode");
        if handshake.peer().is_some() {
            // The node's first message once authorized: its digest of what it offers (protocol 5).
            assert!(matches!(msg, Message::Digests { .. }), "{msg:?}");
            break;
        }
        if let Some(proof) = handshake.on_message(&msg).expect("handshake") {
            io.send(send(&proof)).await.expect("send proof");
        }
    }
    let took = t.elapsed();
    io.send(ws::Message::Close(None)).await.ok();
    took
}

/// Median and 90th percentile of `n` connections to `node`.
async fn handshakes(
    node: &replikativ::Node,
    tls: &NodeTls,
    over_tls: bool,
    n: usize,
) -> [Duration; 2] {
    let key = Keypair::generate().expect("a key");
    let url = url(node, over_tls);
    // One unmeasured connection: the first pays for lazy set-up on both sides.
    connect_and_authenticate(&url, &tls.client, &key).await;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        times.push(connect_and_authenticate(&url, &tls.client, &key).await);
    }
    times.sort();
    [times[n / 2], times[n * 9 / 10]]
}

/// Websocket payload of the second meeting of a level peer with `holder_dir`'s node.
async fn reconnect_payload(root: &Path, tls: Option<&NodeTls>) -> u64 {
    let holder_dir = root.join("holder");
    let peer_dir = root.join("peer");
    build_history(&holder_dir, 10);
    copy_store(&holder_dir, &peer_dir);
    let holder = start_node_tls("holder", &holder_dir, true, None, tls).await;
    let url = url(&holder, tls.is_some());
    let heads = replica(&holder).heads();
    let mut wire = 0;
    for _ in 0..2 {
        let peer = start_node_tls("peer", &peer_dir, false, Some(&url), tls).await;
        wait_level(&peer, &heads, LIMIT).await;
        wire = quiet_wire_bytes(&peer, Duration::from_millis(200)).await;
        peer.shutdown().await;
    }
    holder.shutdown().await;
    wire
}

/// Milliseconds with microsecond precision.
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Runs both measurements over `ws://` and `wss://`, `n` connections each.
pub async fn run(root: &Path, n: usize) {
    let tls = test_tls(&root.join("tls"));
    let plain = reconnect_payload(&root.join("ws"), None).await;
    let secure = reconnect_payload(&root.join("wss"), Some(&tls)).await;
    let dir = root.join("listener");
    build_history(&dir, 10);
    let node = start_node_tls("listener", &dir, true, None, Some(&tls)).await;
    // The node serves `wss://` only; a second one serves `ws://`.
    let plain_dir = root.join("listener-ws");
    build_history(&plain_dir, 10);
    let plain_node = start_node_tls("listener-ws", &plain_dir, true, None, None).await;
    let ws_times = handshakes(&plain_node, &tls, false, n).await;
    let wss_times = handshakes(&node, &tls, true, n).await;
    plain_node.shutdown().await;
    node.shutdown().await;
    println!("\n### Handshake\n");
    println!(
        "| transport | reconnect, nothing new (payload incl. handshake) | connect + authenticate, median of {n} | 90th percentile |"
    );
    println!("|---|---:|---:|---:|");
    for (name, bytes, [median, p90]) in [("ws://", plain, ws_times), ("wss://", secure, wss_times)]
    {
        println!("| {name} | {bytes} B | {} | {} |", ms(median), ms(p90));
    }
}
