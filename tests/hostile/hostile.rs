//! Hostile peers against a real websocket server (issues 5 and 8): malformed, oversized and
//! text frames, wrong versions, forged ids, commits with unreachable parents, subscription
//! floods and a peer that never reads. Each is refused with a clear error while a
//! well-behaved peer keeps replicating through the same server, memory stays bounded, and
//! the server's store holds nothing from the hostile peer.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::nodes::{
    RssPeak, big_op, client, commit_count, commit_range, heads, key, op, rss_kib, serial, server,
    url, wait_converged,
};
use crate::common::raw::{Got, RawClient, RawTcp};
use crate::common::wait::wait_until;
use replikativ::crdt::{Commit, CrdtKey, Transaction};
use replikativ::id::Id;
use replikativ::node::Node;
use replikativ::peer::connection::WINDOW;
use replikativ::protocol::{Blob, ErrorCode, Message, encode};
use replikativ::replica::root_of;

const T: Duration = Duration::from_secs(30);

/// A server, a well-behaved client replicating with it, and what the server's store held.
struct Fixture {
    server: Node,
    good: Node,
    key: CrdtKey,
    next: u64,
    crdts: Vec<CrdtKey>,
    values: u64,
}

impl Fixture {
    async fn start() -> Fixture {
        let k = key("mail:hostile@test");
        let server = server(&k).await;
        let good = client(&url(&server), &k).await;
        commit_range(&good, &k, 0..5).await;
        wait_converged(&server, &good, &k, T).await;
        let mut f = Fixture {
            server,
            good,
            key: k,
            next: 5,
            crdts: Vec::new(),
            values: 0,
        };
        f.remember_store();
        f
    }

    fn url(&self) -> String {
        url(&self.server)
    }

    fn remember_store(&mut self) {
        let store = &self.server.store();
        self.crdts = store.list_crdts().expect("list").into_iter().collect();
        self.values = store.value_count().expect("count");
    }

    /// The well-behaved client still replicates through the server, and the server's store
    /// changed only by the good client's commit (one commit record and one params value).
    async fn assert_still_serving(&mut self, after: &str) {
        let n = self.next;
        self.next += 1;
        commit_range(&self.good, &self.key, n..n + 1).await;
        wait_converged(&self.server, &self.good, &self.key, T).await;
        let store = &self.server.store();
        let crdts: Vec<CrdtKey> = store.list_crdts().expect("list").into_iter().collect();
        assert_eq!(crdts, self.crdts, "after {after}: no CRDT created");
        assert_eq!(
            store.value_count().expect("count"),
            self.values + 2,
            "after {after}: only the good commit and its params were stored"
        );
        assert!(
            store.verify().expect("verify").is_ok(),
            "after {after}: store verifies"
        );
        assert_eq!(commit_count(&self.server, &self.key), n as usize + 2);
        self.remember_store();
    }

    async fn stop(self) {
        self.good.shutdown().await;
        self.server.shutdown().await;
    }
}

/// Sends `frames` on a fresh raw connection and expects the server to answer an `Error` with
/// `code` and a non-empty message, then close.
async fn refused(url: &str, frames: Vec<Vec<u8>>, code: ErrorCode, what: &str) -> String {
    let mut raw = RawClient::connect(url).await;
    for f in frames {
        if !raw.send_bytes(f).await {
            break;
        }
    }
    let (error, why) = raw.until_closed(T).await;
    let (got, message) = error.unwrap_or_else(|| panic!("{what}: no Error before close ({why})"));
    assert_eq!(got, code, "{what}: {message}");
    assert!(!message.is_empty(), "{what}: the error says why");
    message
}

/// A well-formed `Hello` of a fresh key.
fn hello() -> Vec<u8> {
    let key = replikativ::identity::Keypair::generate().expect("a key");
    encode(&crate::common::raw::hello(key.public(), rand::random())).expect("encode")
}

#[actix_rt::test]
async fn malformed_frames_are_refused_while_other_peers_keep_replicating() {
    let _serial = serial().await;
    let mut f = Fixture::start().await;
    let commits = encode(&Message::Commits {
        crdt: f.key.clone(),
        commits: vec![Blob::new(vec![7; 300])],
        signatures: Vec::new(),
    })
    .expect("encode");
    let mut random = vec![0u8; 512];
    rand::fill(&mut random[..]);
    random[0] = 0xc1; // never valid MessagePack
    // {"commits": array32 claiming 4 billion items}, {"values": [key, bin32 of 4 GiB]}
    let absurd_items = [
        &[0x81, 0xa7][..],
        b"commits",
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
    ]
    .concat();
    let absurd_bin = [
        &[0x81, 0xa6][..],
        b"values",
        &[0x92, 0xc0, 0xc6, 0xff, 0xff, 0xff, 0xf0, 1, 2],
    ]
    .concat();
    let unknown_kind = [&[0x81, 0xa5][..], b"steal", &[0x90]].concat();
    let cases: Vec<(&str, Vec<Vec<u8>>, ErrorCode)> = vec![
        (
            "random bytes first",
            vec![random.clone()],
            ErrorCode::Malformed,
        ),
        (
            "random bytes after hello",
            vec![hello(), random],
            ErrorCode::Malformed,
        ),
        (
            "truncated MessagePack",
            vec![hello(), commits[..commits.len() / 2].to_vec()],
            ErrorCode::Malformed,
        ),
        (
            "an array claiming 4 billion items",
            vec![hello(), absurd_items],
            ErrorCode::Malformed,
        ),
        (
            "a binary claiming 4 GiB",
            vec![hello(), absurd_bin],
            ErrorCode::Malformed,
        ),
        (
            "an unknown message kind",
            vec![hello(), unknown_kind],
            ErrorCode::UnknownKind,
        ),
        ("an empty frame", vec![Vec::new()], ErrorCode::Malformed),
        ("commits before hello", vec![commits], ErrorCode::Unexpected),
    ];
    for (what, frames, code) in cases {
        refused(&f.url(), frames, code, what).await;
        f.assert_still_serving(what).await;
    }
    f.stop().await;
}

#[actix_rt::test]
async fn text_frames_are_refused_with_a_clear_error() {
    let _serial = serial().await;
    let mut f = Fixture::start().await;
    let mut raw = RawClient::connect(&f.url()).await;
    assert!(raw.send_bytes(hello()).await);
    assert!(raw.send_text("{\"hello\": 1}").await);
    let (error, _why) = raw.until_closed(T).await;
    let (code, message) = error.expect("an Error before close");
    assert_eq!(code, ErrorCode::TextFrame, "{message}");
    f.assert_still_serving("a text frame").await;
    f.stop().await;
}

#[actix_rt::test]
async fn a_peer_speaking_another_protocol_version_is_refused() {
    let _serial = serial().await;
    let mut f = Fixture::start().await;
    let key = replikativ::identity::Keypair::generate().expect("a key");
    let frame = encode(&Message::Hello {
        version: 99,
        key: key.public(),
        nonce: replikativ::protocol::FixedBytes([1; 32]),
    })
    .expect("encode");
    let message = refused(&f.url(), vec![frame], ErrorCode::WrongVersion, "version 99").await;
    assert!(
        message.contains("99"),
        "the error names the version: {message}"
    );
    f.assert_still_serving("a wrong version").await;
    f.stop().await;
}

/// A raw client that completed `Hello` + `Subscribe` for `k` and got the server's `Heads`
/// (the acknowledgement).
async fn subscribed(url: &str, k: &CrdtKey) -> RawClient {
    let mut raw = RawClient::connect(url).await;
    raw.hello_subscribe(vec![k.clone()]).await;
    raw.expect(T, |m| matches!(m, Message::Heads { .. })).await;
    raw
}

fn commit_on(parents: Vec<Id>, params: Id, ts: i64) -> replikativ::crdt::EncodedCommit {
    Commit {
        parents,
        transactions: vec![Transaction {
            op: "add".into(),
            params,
        }],
        author: "mallory".into(),
        ts,
    }
    .encode()
}

#[actix_rt::test]
async fn forged_ids_and_unreachable_parents_are_refused_and_nothing_is_stored() {
    let _serial = serial().await;
    let mut f = Fixture::start().await;
    let k = f.key.clone();
    let (_, params) = op(9_999);
    let params_id = Id::of(&params);
    let on_root = commit_on(vec![root_of(&k).id], params_id, 1);
    let orphan = commit_on(vec![Id::of(b"a parent nobody has")], params_id, 2);

    // 1. A value whose claimed id is not the hash of its bytes.
    let mut raw = subscribed(&f.url(), &k).await;
    let forged_value = Blob {
        id: Id::of(b"claimed"),
        bytes: replikativ::protocol::ByteBuf(params.clone()),
    };
    raw.send(&Message::Values {
        crdt: k.clone(),
        values: vec![forged_value],
    })
    .await;
    raw.send(&Message::Commits {
        crdt: k.clone(),
        commits: vec![Blob::new(on_root.bytes.clone())],
        signatures: Vec::new(),
    })
    .await;
    let (error, _) = raw.until_closed(T).await;
    assert_eq!(error.expect("error").0, ErrorCode::Verification);
    f.assert_still_serving("a forged value id").await;

    // 2. A commit whose claimed id is another commit's.
    let mut raw = subscribed(&f.url(), &k).await;
    raw.send(&Message::Values {
        crdt: k.clone(),
        values: vec![Blob::new(params.clone())],
    })
    .await;
    let forged_commit = Blob {
        id: orphan.id,
        bytes: replikativ::protocol::ByteBuf(on_root.bytes.clone()),
    };
    raw.send(&Message::Commits {
        crdt: k.clone(),
        commits: vec![forged_commit],
        signatures: Vec::new(),
    })
    .await;
    let (error, _) = raw.until_closed(T).await;
    assert_eq!(error.expect("error").0, ErrorCode::Verification);
    f.assert_still_serving("a forged commit id").await;

    // 3. A well-formed commit whose parent is nowhere.
    let mut raw = subscribed(&f.url(), &k).await;
    raw.send(&Message::Values {
        crdt: k.clone(),
        values: vec![Blob::new(params.clone())],
    })
    .await;
    raw.send(&Message::Commits {
        crdt: k.clone(),
        commits: vec![Blob::new(orphan.bytes.clone())],
        signatures: Vec::new(),
    })
    .await;
    let (error, _) = raw.until_closed(T).await;
    let (code, message) = error.expect("error");
    assert_eq!(code, ErrorCode::MissingParents, "{message}");
    assert!(
        message.contains(&orphan.id.to_string()),
        "the error names the commit: {message}"
    );
    f.assert_still_serving("a commit with an unreachable parent")
        .await;

    // 4. A well-formed commit whose params value was neither sent nor held.
    let mut raw = subscribed(&f.url(), &k).await;
    raw.send(&Message::Commits {
        crdt: k.clone(),
        commits: vec![Blob::new(on_root.bytes.clone())],
        signatures: Vec::new(),
    })
    .await;
    let (error, _) = raw.until_closed(T).await;
    let (_code, message) = error.expect("error");
    assert!(
        message.contains(&params_id.to_string()),
        "the error names the missing value: {message}"
    );
    f.assert_still_serving("a commit without its values").await;
    assert!(!heads(&f.server, &k).contains(&on_root.id));
    f.stop().await;
}

#[actix_rt::test]
async fn frames_over_the_websocket_limit_are_refused_without_buffering_them() {
    let _serial = serial().await;
    let mut f = Fixture::start().await;
    let addr = f.server.listen_addr().expect("listens");
    let before = rss_kib();
    let peak = RssPeak::start();
    for round in 0..2 {
        // 64 MiB declared and streamed: refused at the header; the rest is discarded unread.
        let mut raw = RawTcp::connect(addr).await;
        raw.frame_header(64 << 20).await.expect("header");
        raw.payload(64 << 20).await;
        assert!(
            raw.closed_within(T).await,
            "round {round}: the server closes"
        );
        f.assert_still_serving("a 64 MiB frame").await;
    }
    let grown = peak.finish().saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "resident memory peaked {grown} KiB higher during 64 MiB frames"
    );
    // An absurd declared length (2^62 bytes) is refused at once.
    let mut raw = RawTcp::connect(addr).await;
    raw.frame_header(1 << 62).await.expect("header");
    assert!(raw.closed_within(T).await, "an absurd length is refused");
    f.assert_still_serving("an absurd frame length").await;
    f.stop().await;
}

#[actix_rt::test]
async fn a_flood_of_subscriptions_is_refused_and_creates_no_replicas() {
    let _serial = serial().await;
    let mut f = Fixture::start().await;
    // One frame with thousands of CRDTs: refused before any replica is created.
    let flood: Vec<CrdtKey> = (0..5000).map(|_| key("mail:flood@test")).collect();
    let mut raw = RawClient::connect(&f.url()).await;
    raw.hello_subscribe(flood).await;
    let (error, _) = raw.until_closed(T).await;
    let (code, message) = error.expect("an Error before close");
    assert_eq!(code, ErrorCode::Overloaded, "{message}");
    assert!(
        message.contains("subscri"),
        "the error says what overflowed: {message}"
    );
    f.assert_still_serving("a subscription flood in one frame")
        .await;

    // Many small frames: bounded per connection.
    let mut raw = RawClient::connect(&f.url()).await;
    raw.hello_subscribe(Vec::new()).await;
    let mut closed = None;
    for _ in 0..100 {
        let batch: Vec<CrdtKey> = (0..20).map(|_| key("mail:flood@test")).collect();
        if !raw.send(&Message::Subscribe { crdts: batch }).await {
            break;
        }
        if let Some(Got::Msg(Message::Error { code, message })) =
            raw.recv(Duration::from_millis(1)).await
        {
            closed = Some((code, message));
            break;
        }
    }
    let (error, _) = match closed {
        Some(e) => (Some(e), String::new()),
        None => raw.until_closed(Duration::from_secs(120)).await,
    };
    assert_eq!(
        error.expect("an Error before close").0,
        ErrorCode::Overloaded
    );
    let created = f.server.replicas().keys().expect("list CRDTs").len();
    assert!(
        created <= 1 + replikativ::sync::SyncLimits::default().max_subscriptions,
        "{created} replicas"
    );
    f.stop().await;
}

#[actix_rt::test]
async fn a_peer_that_never_reads_is_dropped_while_others_are_served_and_memory_stays_bounded() {
    let _serial = serial().await;
    let k = key("mail:slow@consumer");
    let server = Node::builder()
        .name("server")
        .listen("127.0.0.1:0")
        .cdvcs(k.clone())
        .slow_peer_timeout(Duration::from_secs(2))
        .start()
        .await
        .expect("server");
    // A catch-up of ~40 MiB: far more than the flow-control window.
    let commits = crate::common::iterations(400, 400) as u64;
    let stage = server.stage();
    for c in 0..commits {
        let txs = (0..25).map(|t| big_op(c * 25 + t, 4096)).collect();
        stage.transact(&k, txs).await.expect("transact");
    }
    let catch_up = server.store().value_count().expect("count");
    assert!(catch_up > 0);
    let before = rss_kib();
    let sent_before = server.peers().metrics().bytes_out.load(Ordering::Relaxed);
    let mut sleepers = Vec::new();
    for _ in 0..3 {
        let mut raw = RawClient::connect(&url(&server)).await;
        raw.hello_subscribe(vec![k.clone()]).await;
        raw.expect(T, |m| matches!(m, Message::Heads { .. })).await;
        // Announce only the root: the server starts the whole catch-up.
        let root = vec![root_of(&k).id];
        assert!(
            raw.send(&Message::Heads {
                crdt: k.clone(),
                heads: root
            })
            .await
        );
        sleepers.push(raw); // and never read again
    }
    // The server stops sending once each sleeper's window is full.
    let sent = || server.peers().metrics().bytes_out.load(Ordering::Relaxed) - sent_before;
    let mut last = (sent(), std::time::Instant::now());
    wait_until(
        "the server to stop sending to the sleepers",
        T,
        || {
            let now = sent();
            if now != last.0 {
                last = (now, std::time::Instant::now());
            }
            last.1.elapsed() > Duration::from_millis(500)
        },
        || format!("{} bytes sent", sent()),
    )
    .await;
    let window = (WINDOW as usize + 1) * (4 << 20) + (1 << 20);
    let total = sent() as usize;
    assert!(
        total <= 3 * window,
        "sent {total} bytes to three peers that never read (window {window} each)"
    );
    // What the server buffers for peers that never read is bounded by their windows.
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 160 * 1024,
        "resident memory grew by {grown} KiB for three peers that never read"
    );
    // Meanwhile a well-behaved peer catches up completely.
    let good = client(&url(&server), &k).await;
    wait_converged(&server, &good, &k, Duration::from_secs(120)).await;
    // The sleepers are dropped for not reading (while they still do not read: reading would
    // acknowledge and un-stall them), with a clear reason.
    wait_until(
        "the server to drop the three peers that never read",
        T,
        || server.peers().live_connections().len() == 1,
        || {
            format!(
                "{} connections live",
                server.peers().live_connections().len()
            )
        },
    )
    .await;
    for mut raw in sleepers {
        let (error, why) = raw.until_closed(T).await;
        let text = format!("{error:?} {why}");
        assert!(text.contains("not reading"), "closed with: {text}");
    }
    good.shutdown().await;
    server.shutdown().await;
}

/// A pack header (magic, format version, the value lengths as LEB128) before `frame`.
fn pack_with_header(lengths: &[usize], frame: &[u8]) -> Vec<u8> {
    let mut out = replikativ::pack::MAGIC.to_vec();
    out.push(replikativ::pack::VERSION);
    let mut varint = |mut v: u64| {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    };
    varint(lengths.len() as u64);
    for &l in lengths {
        varint(l as u64);
    }
    out.extend_from_slice(frame);
    out
}

/// Packs on the wire (protocol 4): a decompression bomb (a frame that inflates to 64 MiB
/// behind a header declaring two tweets), a pack declaring more than a pack may hold, and a
/// pack whose second value does not hash to the id sent for it: each refused with a
/// verification error naming why, nothing of its batch stored, the server serving on.
#[actix_rt::test]
async fn packs_that_inflate_beyond_their_bound_or_hold_a_forged_value_are_refused() {
    let _serial = serial().await;
    let mut f = Fixture::start().await;
    let k = f.key.clone();
    let (_, a) = op(9_001);
    let (_, b) = op(9_002);
    let ids = vec![Id::of(&a), Id::of(&b)];
    let commit = Commit {
        parents: vec![root_of(&k).id],
        transactions: ids
            .iter()
            .map(|id| Transaction {
                op: "add".into(),
                params: *id,
            })
            .collect(),
        author: "mallory".into(),
        ts: 1,
    }
    .encode();

    // 64 MiB of zeros in a frame of a few KiB, with no content size in its header: only the
    // decoder's output reveals the size.
    let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).expect("encoder");
    encoder
        .set_parameter(zstd::zstd_safe::CParameter::WindowLog(17))
        .expect("window");
    encoder.include_contentsize(false).expect("no content size");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        std::io::Write::write_all(&mut encoder, &zeros).expect("compress");
    }
    let frame = encoder.finish().expect("finish");
    assert!(frame.len() < 1 << 16, "a bomb: {} bytes", frame.len());
    let bomb = pack_with_header(&[a.len() + 60_000, b.len() + 60_000], &frame);
    let too_large = pack_with_header(&[replikativ::pack::MAX_PACK_BYTES, 1], &frame);
    let mut tampered = b.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let forged = replikativ::pack::encode(&[&a[..], &tampered[..]]);
    let cases = [
        (bomb, "inflates beyond", "a decompression bomb"),
        (too_large, "more than the", "a pack declaring too much"),
        (forged, "hashes to", "a pack with a forged value"),
    ];
    for (bytes, says, what) in cases {
        let mut raw = subscribed(&f.url(), &k).await;
        raw.send(&Message::Packs {
            crdt: k.clone(),
            packs: vec![replikativ::protocol::WirePack {
                ids: ids.clone(),
                bytes: replikativ::protocol::ByteBuf(bytes),
            }],
        })
        .await;
        // Sent after, in case the refusal waits for the batch (it does not: the codec
        // refuses the frame, and the send may find the connection closed).
        raw.send(&Message::Commits {
            crdt: k.clone(),
            commits: vec![Blob::new(commit.bytes.clone())],
            signatures: Vec::new(),
        })
        .await;
        let (error, why) = raw.until_closed(T).await;
        let (code, message) = error.unwrap_or_else(|| panic!("{what}: no error ({why})"));
        assert_eq!(code, ErrorCode::Verification, "{what}: {message}");
        assert!(
            message.contains(says),
            "{what}: the error says why: {message}"
        );
        f.assert_still_serving(what).await;
        assert!(!heads(&f.server, &k).contains(&commit.id), "{what}");
    }
    f.stop().await;
}
