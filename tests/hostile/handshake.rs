//! Hostile peers against the authentication handshake and the rules of a real server (issue
//! 14): a replayed handshake, a proof signed by another key than the announced one, a
//! handshake that stalls, hostile bytes before and during it, an unknown key, and browser
//! upgrades from foreign origins or under a foreign `Host`. Each is refused with a reason
//! while an allowed peer keeps replicating through the same server, and the server's store
//! holds nothing from the hostile peer. The transcript the raw clients sign is written out
//! in `common::raw`, independently of the code under test.

use std::time::Duration;

use crate::common::nodes::{commit_count, commit_range, key, serial, url, wait_converged};
use crate::common::raw::{ACCEPTOR, DIALLER, RawClient, hello, proof, transcript, upgrade};
use replikativ::crdt::CrdtKey;
use replikativ::identity::{Keypair, PublicKey};
use replikativ::node::Node;
use replikativ::protocol::{ErrorCode, FixedBytes, Message, encode};
use replikativ::sync::Rights;

const T: Duration = Duration::from_secs(60);

/// A server admitting `admitted` (and a well-behaved client, replicating through it).
struct Fixture {
    server: Node,
    good: Node,
    key: CrdtKey,
    next: u64,
    values: u64,
}

impl Fixture {
    async fn start(admitted: &[PublicKey]) -> Fixture {
        let k = key("mail:handshake@test");
        let good_key = Keypair::generate().expect("a key");
        let mut builder = Node::builder()
            .name("server")
            .listen("127.0.0.1:0")
            .cdvcs(k.clone())
            .allow(good_key.public(), Rights::ALL)
            .allow_origin("https://app.example.com");
        for a in admitted {
            builder = builder.allow(*a, Rights::ALL);
        }
        let server = builder.start().await.expect("server");
        let good = Node::builder()
            .name("good")
            .key(good_key)
            .connect(url(&server))
            .cdvcs(k.clone())
            .start()
            .await
            .expect("good client");
        commit_range(&good, &k, 0..3).await;
        wait_converged(&server, &good, &k, T).await;
        let values = server.store().value_count().expect("count");
        Fixture {
            server,
            good,
            key: k,
            next: 3,
            values,
        }
    }

    /// The allowed client still replicates, and the server stored only its commit.
    async fn assert_still_serving(&mut self, after: &str) {
        let n = self.next;
        self.next += 1;
        commit_range(&self.good, &self.key, n..n + 1).await;
        wait_converged(&self.server, &self.good, &self.key, T).await;
        let values = self.server.store().value_count().expect("count");
        assert_eq!(
            values,
            self.values + 2,
            "after {after}: only the good commit"
        );
        assert_eq!(commit_count(&self.server, &self.key), n as usize + 2);
        self.values = values;
    }

    async fn stop(self) {
        self.good.shutdown().await;
        self.server.shutdown().await;
    }
}

/// A genuine handshake as `key` on a new connection: the connection and the frames it sent.
async fn genuine(url: &str, key: &Keypair) -> (RawClient, [Vec<u8>; 2]) {
    let mut raw = RawClient::connect(url).await;
    let nonce: [u8; 32] = rand::random();
    let hello_frame = encode(&hello(key.public(), nonce)).expect("encode");
    assert!(raw.send_bytes(hello_frame.clone()).await);
    let Message::Hello {
        key: server,
        nonce: theirs,
        ..
    } = raw.expect(T, |m| matches!(m, Message::Hello { .. })).await
    else {
        unreachable!()
    };
    let signed = transcript(DIALLER, (key.public(), nonce), (server, theirs.0));
    let proof_frame = encode(&proof(key.sign(&signed))).expect("encode");
    assert!(raw.send_bytes(proof_frame.clone()).await);
    let Message::Proof { signature } = raw.expect(T, |m| matches!(m, Message::Proof { .. })).await
    else {
        unreachable!()
    };
    let theirs_signed = transcript(ACCEPTOR, (key.public(), nonce), (server, theirs.0));
    assert!(server.verifies(&theirs_signed, &signature.0));
    (raw, [hello_frame, proof_frame])
}

/// Sends `frames` on a new connection and expects an `Error` with `code`, then a close.
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
    message
}

#[actix_rt::test]
async fn a_replayed_handshake_and_another_keys_proof_are_refused() {
    let _serial = serial().await;
    let victim = Keypair::generate().expect("a key");
    let mut f = Fixture::start(&[victim.public()]).await;
    // The victim's genuine handshake is admitted; an eavesdropper records its frames.
    let (raw, recorded) = genuine(&url(&f.server), &victim).await;
    drop(raw);
    let message = refused(
        &url(&f.server),
        recorded.to_vec(),
        ErrorCode::Authentication,
        "a replayed handshake",
    )
    .await;
    assert!(message.contains("does not verify"), "{message}");
    f.assert_still_serving("a replayed handshake").await;

    // Mallory announces the victim's key and signs this connection's transcript herself.
    let mallory = Keypair::generate().expect("a key");
    let mut raw = RawClient::connect(&url(&f.server)).await;
    let nonce: [u8; 32] = rand::random();
    assert!(raw.send(&hello(victim.public(), nonce)).await);
    let Message::Hello {
        key: server,
        nonce: theirs,
        ..
    } = raw.expect(T, |m| matches!(m, Message::Hello { .. })).await
    else {
        unreachable!()
    };
    let signed = transcript(DIALLER, (victim.public(), nonce), (server, theirs.0));
    assert!(raw.send(&proof(mallory.sign(&signed))).await);
    let (error, _) = raw.until_closed(T).await;
    let (code, message) = error.expect("an Error before close");
    assert_eq!(code, ErrorCode::Authentication, "{message}");
    assert!(message.contains(&victim.public().to_string()), "{message}");
    f.assert_still_serving("a proof by another key").await;
    f.stop().await;
}

#[actix_rt::test]
async fn a_stalled_handshake_is_closed_in_bounded_time() {
    let _serial = serial().await;
    let mut f = Fixture::start(&[]).await;
    // One says hello and never proves anything; one says nothing at all. Both answer the
    // server's websocket pings, so only the handshake bound can close them.
    let mut hello_only = RawClient::connect(&url(&f.server)).await;
    let someone = Keypair::generate().expect("a key");
    assert!(hello_only.send(&hello(someone.public(), [1; 32])).await);
    let mut silent = RawClient::connect(&url(&f.server)).await;
    for (what, raw) in [("hello only", &mut hello_only), ("silent", &mut silent)] {
        let (error, _) = raw.until_closed(T).await;
        let (code, message) = error.unwrap_or_else(|| panic!("{what}: no Error"));
        assert_eq!(code, ErrorCode::Timeout, "{what}: {message}");
        assert!(message.contains("handshake"), "{what}: {message}");
    }
    f.assert_still_serving("stalled handshakes").await;
    f.stop().await;
}

#[actix_rt::test]
async fn hostile_bytes_before_and_during_the_handshake_are_refused() {
    let _serial = serial().await;
    let mut f = Fixture::start(&[]).await;
    let stranger = Keypair::generate().expect("a key");
    let hello_frame = || encode(&hello(stranger.public(), rand::random())).expect("encode");
    let mut random = vec![0u8; 300];
    rand::fill(&mut random[..]);
    random[0] = 0xc1;
    // {"proof": [bin 10]}: a signature of the wrong length.
    let short = [&[0x81, 0xa5][..], b"proof", &[0x91, 0xc4, 10], &[7; 10]].concat();
    let server_key = f.server.public_key();
    let cases: Vec<(&str, Vec<Vec<u8>>, ErrorCode)> = vec![
        (
            "random bytes first",
            vec![random.clone()],
            ErrorCode::Malformed,
        ),
        (
            "random bytes instead of a proof",
            vec![hello_frame(), random],
            ErrorCode::Malformed,
        ),
        (
            "a short signature",
            vec![hello_frame(), short],
            ErrorCode::Malformed,
        ),
        (
            "a proof before any hello",
            vec![encode(&proof([0; 64])).expect("encode")],
            ErrorCode::Unexpected,
        ),
        (
            "a subscribe instead of a proof",
            vec![
                hello_frame(),
                encode(&Message::Subscribe {
                    crdts: vec![f.key.clone()],
                })
                .expect("encode"),
            ],
            ErrorCode::Unexpected,
        ),
        (
            "a second hello",
            vec![hello_frame(), hello_frame()],
            ErrorCode::Unexpected,
        ),
        (
            "a forged proof of all zeros",
            vec![
                hello_frame(),
                encode(&Message::Proof {
                    signature: FixedBytes([0; 64]),
                })
                .expect("encode"),
            ],
            ErrorCode::Authentication,
        ),
    ];
    for (what, frames, code) in cases {
        refused(&url(&f.server), frames, code, what).await;
        f.assert_still_serving(what).await;
    }
    // The server's own key: refused naming what to do about copied keys.
    let own = encode(&hello(server_key, [3; 32])).expect("encode");
    let message = refused(
        &url(&f.server),
        vec![own],
        ErrorCode::Authentication,
        "own key",
    )
    .await;
    assert!(
        message.contains("keygen") && message.contains("--key"),
        "{message}"
    );
    f.assert_still_serving("our own key").await;
    f.stop().await;
}

#[actix_rt::test]
async fn an_unknown_key_is_told_what_to_do_after_proving_it() {
    let _serial = serial().await;
    let mut f = Fixture::start(&[]).await;
    let stranger = Keypair::generate().expect("a key");
    let (mut raw, _) = genuine(&url(&f.server), &stranger).await;
    let (error, _) = raw.until_closed(T).await;
    let (code, message) = error.expect("an Error before close");
    assert_eq!(code, ErrorCode::Unauthorized, "{message}");
    assert!(
        message.contains(&format!("unknown peer key {}", stranger.public()))
            && message.contains("--allow")
            && message.contains(&f.server.public_key().to_string()),
        "{message}"
    );
    f.assert_still_serving("an unknown key").await;
    f.stop().await;
}

#[actix_rt::test]
async fn browser_upgrades_need_an_allowed_origin_and_a_host_naming_the_node() {
    let _serial = serial().await;
    let mut f = Fixture::start(&[]).await;
    let addr = f.server.listen_addr().expect("listens");
    let host = addr.to_string();
    let own = format!("http://{host}");
    let rebound = format!("evil.example.com:{}", addr.port());
    let rebound_origin = format!("http://{rebound}");
    // (what, headers, expected status, what the refusal says)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("no origin", vec![("Host", &host)], "101", ""),
        (
            "its own page",
            vec![("Host", &host), ("Origin", &own)],
            "101",
            "",
        ),
        (
            "an allowed origin",
            vec![("Host", &host), ("Origin", "https://app.example.com")],
            "101",
            "",
        ),
        (
            "a foreign origin",
            vec![("Host", &host), ("Origin", "http://evil.example.com")],
            "403",
            "--allow-origin",
        ),
        (
            "DNS rebinding",
            vec![("Host", &rebound), ("Origin", &rebound_origin)],
            "403",
            "DNS rebinding",
        ),
    ];
    for (what, headers, status, says) in cases {
        let (line, body) = upgrade(addr, &headers).await;
        assert!(line.contains(status), "{what}: {line} {body}");
        assert!(body.contains(says), "{what}: {body}");
    }
    f.assert_still_serving("browser upgrades").await;
    f.stop().await;
}
