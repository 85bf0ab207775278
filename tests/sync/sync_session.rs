//! One `SyncSession` driven by hand: handshake rules, verification that refuses whole
//! batches (reported with peer and id), bounds, deferral of heads while applying, no echo.

use crate::support::dag::Replica;
use replikativ::Id;
use replikativ::crdt::{Commit, CrdtKey, Transaction};
use replikativ::identity::{Keypair, PublicKey};
use replikativ::protocol::{Blob, ByteBuf, Codec, ErrorCode, FixedBytes, Message};
use replikativ::sync::{
    CloseReason, Effect, Handshake, HandshakeError, Request, Rights, Role, SessionConfig,
    SyncError, SyncLimits, SyncSession,
};
use uuid::Uuid;

/// Our replica's id (its graph and values; the session's key is [`us`]).
const US: Uuid = Uuid::from_u128(1);

fn us() -> Keypair {
    Keypair::from_seed([1; 32])
}

fn them() -> Keypair {
    Keypair::from_seed([2; 32])
}

fn their_key() -> PublicKey {
    them().public()
}

fn key() -> CrdtKey {
    CrdtKey::new("mail:a@x.org", Uuid::from_u128(9))
}

/// A dialling session of [`us`] subscribing to `key()`.
fn session_with(limits: SyncLimits) -> SyncSession {
    SyncSession::new(SessionConfig {
        handshake: Handshake::new(us(), Role::Dialler, [10; 32], None),
        subscriptions: vec![key()],
        limits,
    })
}

/// Runs the handshake of a started session `s` against [`them`] (the acceptor) and answers
/// `Authenticated` with `rights`: the effects of `authorize` (our `Heads`, the subscription).
fn authenticate(
    s: &mut SyncSession,
    hello: &Message,
    replica: &Replica,
    rights: Rights,
) -> Vec<Effect> {
    let mut peer = Handshake::new(them(), Role::Acceptor, [20; 32], None);
    let their_proof = peer
        .on_message(hello)
        .expect("our hello")
        .expect("their proof");
    let effects = s.on_message(peer.hello(), replica);
    let [Effect::Send(our_proof @ Message::Proof { .. })] = &effects[..] else {
        panic!("expected our proof, got {effects:?}");
    };
    assert_eq!(peer.on_message(our_proof), Ok(None), "our proof verifies");
    let effects = s.on_message(their_proof, replica);
    assert!(
        matches!(&effects[..], [Effect::Authenticated { peer }] if *peer == their_key()),
        "{effects:?}"
    );
    s.authorize(rights, replica)
}

/// A started session past the handshake, the peer authorized with `rights`.
fn authorized(rights: Rights, replica: &Replica) -> SyncSession {
    let mut s = session_with(SyncLimits::default());
    let [Effect::Send(hello)] = &s.start()[..] else {
        panic!("start sends hello only");
    };
    authenticate(&mut s, &hello.clone(), replica, rights);
    s
}

/// A session of [`us`] that subscribes to nothing itself, past the handshake, the peer
/// authorized with `rights`: it only serves what the peer subscribes to.
fn serving(rights: Rights, replica: &Replica) -> SyncSession {
    let mut s = SyncSession::new(SessionConfig {
        handshake: Handshake::new(us(), Role::Dialler, [10; 32], None),
        subscriptions: Vec::new(),
        limits: SyncLimits::default(),
    });
    let [Effect::Send(hello)] = &s.start()[..] else {
        panic!("start sends hello only");
    };
    let effects = authenticate(&mut s, &hello.clone(), replica, rights);
    assert!(effects.is_empty(), "no subscription of ours: {effects:?}");
    s
}

/// A session past the handshake with `key()` shared, and our replica.
fn ready() -> (SyncSession, Replica) {
    ready_with(SyncLimits::default())
}

fn ready_with(limits: SyncLimits) -> (SyncSession, Replica) {
    ready_as(limits, Rights::ALL)
}

fn ready_as(limits: SyncLimits, rights: Rights) -> (SyncSession, Replica) {
    let replica = Replica::new(US, vec![key()]);
    let mut s = session_with(limits);
    let [Effect::Send(hello)] = &s.start()[..] else {
        panic!("start sends hello only");
    };
    let effects = authenticate(&mut s, &hello.clone(), &replica, rights);
    assert!(matches!(effects[..], [Effect::Send(Message::Heads { .. })]));
    // The peer's acknowledgement shares it; our heads went out with our subscription.
    let effects = s.on_message(Message::Subscribed { crdts: vec![key()] }, &replica);
    assert!(effects.is_empty(), "{effects:?}");
    (s, replica)
}

/// A chain of `n` commits on top of the root, each with one params value.
fn chain(n: usize) -> Vec<(Blob, Blob)> {
    let mut parent = Commit::root(&key()).id;
    (0..n)
        .map(|i| {
            let value = Blob::new(format!("value {i}").into_bytes());
            let c = Commit {
                parents: vec![parent],
                transactions: vec![Transaction {
                    op: "add".into(),
                    params: value.id,
                }],
                author: "them".into(),
                ts: i as i64,
            }
            .encode();
            parent = c.id;
            (Blob::new(c.bytes), value)
        })
        .collect()
}

fn values(items: &[(Blob, Blob)]) -> Message {
    Message::Values {
        crdt: key(),
        values: items.iter().map(|(_, v)| v.clone()).collect(),
    }
}

fn commits(items: &[(Blob, Blob)]) -> Message {
    Message::Commits {
        crdt: key(),
        commits: items.iter().map(|(c, _)| c.clone()).collect(),
        signatures: Vec::new(),
    }
}

fn assert_rejected_and_closed(effects: &[Effect], bad: Id, code: ErrorCode) {
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Apply { .. })),
        "nothing of a refused batch is applied: {effects:?}"
    );
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Reject { peer: Some(p), id, .. } if *p == their_key() && *id == bad)
        ),
        "reject names peer and id: {effects:?}"
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Send(Message::Error { code: c, .. }) if *c == code))
    );
    assert!(matches!(effects.last(), Some(Effect::Close { .. })));
}

#[test]
fn start_sends_hello_and_subscribes_with_our_heads_once_the_peer_is_authorized() {
    let replica = Replica::new(US, vec![key()]);
    let mut s = session_with(SyncLimits::default());
    let effects = s.start();
    let [Effect::Send(hello @ Message::Hello { key: k, .. })] = &effects[..] else {
        panic!("start sends hello only: {effects:?}");
    };
    assert_eq!(*k, us().public());
    let hello = hello.clone();
    let effects = authenticate(&mut s, &hello, &replica, Rights::ALL);
    // No separate `Subscribe`: our `Heads` is the subscription.
    let root = Commit::root(&key()).id;
    assert!(
        matches!(&effects[..], [Effect::Send(Message::Heads { crdt, heads })] if *crdt == key() && heads == &vec![root]),
        "{effects:?}"
    );
    assert_eq!(s.peer(), Some(their_key()));
    assert_eq!(s.rights(), Some(Rights::ALL));
}

#[test]
fn a_message_before_hello_closes_with_unexpected() {
    let replica = Replica::new(US, vec![key()]);
    let mut s = session_with(SyncLimits::default());
    s.start();
    let effects = s.on_message(Message::Ping(1), &replica);
    assert!(matches!(
        &effects[..],
        [
            Effect::Send(Message::Error {
                code: ErrorCode::Unexpected,
                ..
            }),
            Effect::Close {
                reason: CloseReason::Handshake(HandshakeError::Unexpected { kind: "ping", .. })
            }
        ]
    ));
    assert!(s.is_closed());
    let late = Handshake::new(them(), Role::Acceptor, [20; 32], None).hello();
    assert!(s.on_message(late, &replica).is_empty());
}

#[test]
fn content_before_the_peer_is_authorized_is_refused_and_nothing_applied() {
    let replica = Replica::new(US, vec![key()]);
    let items = chain(1);
    for msg in [
        values(&items),
        commits(&items),
        Message::Subscribe { crdts: vec![key()] },
    ] {
        let mut s = session_with(SyncLimits::default());
        s.start();
        let mut peer = Handshake::new(them(), Role::Acceptor, [20; 32], None);
        // Hello only: the proof that would authenticate it never comes.
        s.on_message(peer.hello(), &replica);
        let _ = peer.on_message(&Handshake::new(us(), Role::Dialler, [10; 32], None).hello());
        let effects = s.on_message(msg, &replica);
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, Effect::Apply { .. } | Effect::EnsureReplica(_)))
        );
        assert!(
            matches!(effects.last(), Some(Effect::Close { .. })),
            "{effects:?}"
        );
    }
}

#[test]
fn a_hello_with_another_version_is_answered_with_an_error_and_a_close() {
    let replica = Replica::new(US, vec![]);
    let mut s = session_with(SyncLimits::default());
    s.start();
    let effects = s.on_message(
        Message::Hello {
            version: 99,
            key: their_key(),
            nonce: FixedBytes([3; 32]),
        },
        &replica,
    );
    assert!(matches!(
        &effects[..],
        [
            Effect::Send(Message::Error {
                code: ErrorCode::WrongVersion,
                ..
            }),
            Effect::Close {
                reason: CloseReason::Handshake(HandshakeError::WrongVersion { theirs: 99, .. })
            }
        ]
    ));
}

#[test]
fn connecting_to_ourselves_is_refused() {
    let replica = Replica::new(US, vec![]);
    let mut s = session_with(SyncLimits::default());
    s.start();
    let ourselves = Handshake::new(us(), Role::Acceptor, [20; 32], None).hello();
    let effects = s.on_message(ourselves, &replica);
    assert!(
        matches!(
            &effects[..],
            [
                Effect::Send(Message::Error { code: ErrorCode::Authentication, message }),
                Effect::Close { reason: CloseReason::Handshake(HandshakeError::OwnKey { key: k }) }
            ] if *k == us().public() && message.contains("keygen")
        ),
        "{effects:?}"
    );
}

#[test]
fn a_refused_key_is_told_why_and_the_session_closes() {
    let replica = Replica::new(US, vec![key()]);
    let mut s = session_with(SyncLimits::default());
    let [Effect::Send(hello)] = &s.start()[..] else {
        panic!("hello")
    };
    let hello = hello.clone();
    let mut peer = Handshake::new(them(), Role::Acceptor, [20; 32], None);
    let their_proof = peer.on_message(&hello).expect("hello").expect("proof");
    s.on_message(peer.hello(), &replica);
    s.on_message(their_proof, &replica);
    let effects = s.refuse("unknown peer key: add it with --allow".into());
    assert!(
        matches!(
            &effects[..],
            [
                Effect::Send(Message::Error { code: ErrorCode::Unauthorized, message }),
                Effect::Close { reason: CloseReason::Refused { .. } }
            ] if message.contains("--allow")
        ),
        "{effects:?}"
    );
    assert!(s.is_closed());
}

#[test]
fn an_incomplete_handshake_expires_and_a_complete_one_does_not() {
    let replica = Replica::new(US, vec![key()]);
    let mut s = session_with(SyncLimits::default());
    s.start();
    let effects = s.handshake_expired(std::time::Duration::from_secs(10));
    assert!(
        matches!(
            &effects[..],
            [
                Effect::Send(Message::Error {
                    code: ErrorCode::Timeout,
                    ..
                }),
                Effect::Close {
                    reason: CloseReason::HandshakeTimeout { .. }
                }
            ]
        ),
        "{effects:?}"
    );
    let mut s = authorized(Rights::ALL, &replica);
    assert!(
        s.handshake_expired(std::time::Duration::from_secs(10))
            .is_empty()
    );
    assert!(!s.is_closed());
}

#[test]
fn a_subscription_to_a_missing_crdt_creates_an_empty_replica_and_sends_root_heads() {
    let root = Commit::root(&key()).id;
    let subscribe = Message::Subscribe { crdts: vec![key()] };
    let heads = Message::Heads {
        crdt: key(),
        heads: vec![root],
    };
    // A `Subscribe`, or a first `Heads` standing in for it: the same replica creation.
    for request in [subscribe, heads] {
        let replica = Replica::new(US, vec![]);
        let mut s = serving(Rights::ALL, &replica);
        let effects = s.on_message(request.clone(), &replica);
        assert!(
            matches!(
                &effects[..],
                [
                    Effect::EnsureReplica(k),
                    Effect::Send(Message::Heads { heads, .. }),
                    ..
                ] if *k == key() && heads == &vec![root]
            ),
            "{request:?}: {effects:?}"
        );
        assert_eq!(s.shared().cloned().collect::<Vec<_>>(), vec![key()]);
    }
}

#[test]
fn the_first_heads_of_a_crdt_is_a_subscription_answered_once_by_our_heads() {
    let mut replica = Replica::new(US, vec![key()]);
    let ours = vec![replica.commit(&key(), &[b"ours".to_vec()], 1)];
    let root = Commit::root(&key()).id;
    let their_heads = Message::Heads {
        crdt: key(),
        heads: vec![root],
    };
    // The peer subscribes with its heads: we answer with ours and send what it lacks.
    let mut s = serving(Rights::ALL, &replica);
    let effects = s.on_message(their_heads.clone(), &replica);
    assert!(
        matches!(&effects[0], Effect::Send(Message::Heads { heads, .. }) if *heads == ours),
        "{effects:?}"
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::SendCommits { .. })),
        "{effects:?}"
    );
    // Later heads are heads only: never answered with ours again.
    let effects = s.on_message(their_heads.clone(), &replica);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Send(Message::Heads { .. }))),
        "{effects:?}"
    );
    // We subscribed (our heads went out): their heads acknowledge it and are not answered.
    let mut s = authorized(Rights::ALL, &replica);
    let effects = s.on_message(their_heads, &replica);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Send(Message::Heads { .. }))),
        "{effects:?}"
    );
    assert_eq!(s.shared().cloned().collect::<Vec<_>>(), vec![key()]);
}

#[test]
fn ping_is_answered_with_pong() {
    let (mut s, replica) = ready();
    let effects = s.on_message(Message::Ping(7), &replica);
    assert!(matches!(&effects[..], [Effect::Send(Message::Pong(7))]));
}

#[test]
fn a_good_batch_is_applied_with_its_values() {
    let (mut s, replica) = ready();
    let items = chain(3);
    assert!(s.on_message(values(&items), &replica).is_empty());
    let effects = s.on_message(commits(&items), &replica);
    match &effects[..] {
        [Effect::Apply { crdt, batch }] => {
            assert_eq!(*crdt, key());
            assert_eq!(batch.commits.len(), 3);
            assert_eq!(batch.values.len(), 3);
            assert!(batch.values_to_check.is_empty());
        }
        other => panic!("expected one apply, got {other:?}"),
    }
}

#[test]
fn params_not_carried_in_the_batch_are_listed_for_the_store_to_check() {
    let (mut s, replica) = ready();
    let items = chain(2);
    let effects = s.on_message(commits(&items), &replica);
    match &effects[..] {
        [Effect::Apply { batch, .. }] => {
            assert!(batch.values.is_empty());
            assert_eq!(batch.values_to_check, vec![items[0].1.id, items[1].1.id]);
        }
        other => panic!("expected one apply, got {other:?}"),
    }
}

#[test]
fn a_commit_whose_bytes_do_not_hash_to_its_id_rejects_the_whole_batch() {
    let (mut s, replica) = ready();
    let mut items = chain(3);
    let claimed = items[2].0.id;
    items[2].0.bytes.0.push(0);
    s.on_message(values(&items), &replica);
    let effects = s.on_message(commits(&items), &replica);
    assert_rejected_and_closed(&effects, claimed, ErrorCode::Verification);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Reject { reason: SyncError::HashMismatch { .. }, crdt: Some(k), .. } if *k == key()
    )));
}

#[test]
fn a_corrupted_value_rejects_the_whole_batch() {
    let (mut s, replica) = ready();
    let mut items = chain(2);
    let claimed = items[0].1.id;
    items[0].1.bytes = ByteBuf(b"tampered".to_vec());
    s.on_message(values(&items), &replica);
    let effects = s.on_message(commits(&items), &replica);
    assert_rejected_and_closed(&effects, claimed, ErrorCode::Verification);
}

#[test]
fn a_commit_whose_parent_cannot_be_obtained_rejects_the_whole_batch() {
    let (mut s, replica) = ready();
    let items = chain(4);
    // Send commits 0, 1 and 3: commit 3's parent (2) is neither sent nor held.
    let sent = vec![items[0].clone(), items[1].clone(), items[3].clone()];
    s.on_message(values(&sent), &replica);
    let effects = s.on_message(commits(&sent), &replica);
    assert_rejected_and_closed(&effects, items[3].0.id, ErrorCode::MissingParents);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Reject { reason: SyncError::MissingParent { parent, .. }, .. } if *parent == items[2].0.id
    )));
}

#[test]
fn bytes_that_are_not_a_commit_reject_the_batch() {
    let (mut s, replica) = ready();
    let junk = Blob::new(vec![0xc1, 0xc1]);
    let effects = s.on_message(
        Message::Commits {
            crdt: key(),
            commits: vec![junk.clone()],
            signatures: Vec::new(),
        },
        &replica,
    );
    assert_rejected_and_closed(&effects, junk.id, ErrorCode::Verification);
}

#[test]
fn a_forged_id_caught_by_the_codec_is_reported_with_peer_and_id() {
    let (mut s, _replica) = ready();
    let forged = Blob {
        id: Id::of(b"claimed"),
        bytes: ByteBuf(b"sent".to_vec()),
    };
    let codec = Codec::default();
    let frame = codec
        .encode(&Message::Values {
            crdt: key(),
            values: vec![forged],
        })
        .expect("encode");
    let err = codec.decode(&frame).expect_err("forged");
    let effects = s.on_decode_error(err);
    assert_rejected_and_closed(&effects, Id::of(b"claimed"), ErrorCode::Verification);
}

#[test]
fn buffered_values_beyond_the_bound_close_the_connection() {
    let (mut s, replica) = ready_with(SyncLimits {
        max_pending_bytes: 100,
        ..SyncLimits::default()
    });
    let big = Message::Values {
        crdt: key(),
        values: vec![Blob::new(vec![1; 60])],
    };
    assert!(s.on_message(big.clone(), &replica).is_empty());
    let effects = s.on_message(big, &replica);
    assert!(matches!(
        &effects[..],
        [
            Effect::Send(Message::Error {
                code: ErrorCode::Overloaded,
                ..
            }),
            Effect::Close {
                reason: CloseReason::PendingOverflow {
                    bytes: 120,
                    max: 100,
                    ..
                }
            }
        ]
    ));
}

#[test]
fn heads_arriving_while_a_batch_is_applied_wait_for_on_applied() {
    let (mut s, mut replica) = ready();
    let items = chain(2);
    s.on_message(values(&items), &replica);
    let effects = s.on_message(commits(&items), &replica);
    let Some(Effect::Apply { batch, .. }) = effects.into_iter().next() else {
        panic!("expected apply");
    };
    // Before the store confirms, the peer's heads refer to commits still being applied.
    let heads = Message::Heads {
        crdt: key(),
        heads: vec![items[1].0.id],
    };
    assert!(s.on_message(heads, &replica).is_empty());
    // A local commit concurrent with theirs.
    replica.apply(&key(), batch).expect("apply");
    let ours = replica.commit(&key(), &[b"mine".to_vec()], 99);
    let effects = s.on_applied(&key(), &replica);
    // The deferred heads are known now: the hint is saved and only our commit is sent.
    assert!(matches!(
        &effects[..],
        [Effect::SaveKnownHeads { peer, .. }, Effect::SendCommits { ids, .. }]
            if *peer == their_key() && ids == &vec![ours]
    ));
}

#[test]
fn what_the_peer_sent_is_never_echoed_back() {
    let (mut s, mut replica) = ready();
    let items = chain(3);
    s.on_message(values(&items), &replica);
    let effects = s.on_message(commits(&items), &replica);
    let Some(Effect::Apply { batch, .. }) = effects.into_iter().next() else {
        panic!("expected apply");
    };
    replica.apply(&key(), batch).expect("apply");
    assert!(s.on_applied(&key(), &replica).is_empty());
    assert!(s.on_local_change(&key(), &replica).is_empty());
}

#[test]
fn unknown_heads_start_a_have_round_with_our_heads_and_a_verified_hint() {
    let (_, mut replica) = ready();
    let items = chain(5);
    for (c, v) in &items {
        let enc = Commit::decode(&c.bytes.0).expect("decode");
        replica.values.insert(v.id, v.bytes.0.clone());
        replica
            .crdts
            .get_mut(&key())
            .expect("dag")
            .insert(enc.id, enc.commit.parents, enc.bytes);
    }
    // The hint names one commit we hold and one we do not: only the first may be asked.
    let bogus = Id::of(b"not in our graph");
    replica
        .hints
        .insert((their_key(), key()), vec![items[1].0.id, bogus]);
    let mut s = authorized(Rights::ALL, &replica);
    s.on_message(Message::Subscribed { crdts: vec![key()] }, &replica);
    let effects = s.on_message(
        Message::Heads {
            crdt: key(),
            heads: vec![Id::of(b"their unknown head")],
        },
        &replica,
    );
    let head = items[4].0.id;
    assert!(matches!(
        &effects[..],
        [Effect::Send(Message::Have { sample, .. })] if sample == &vec![head, items[1].0.id]
    ));
    // They hold the hinted commit but not our head: the next round samples between them.
    let effects = s.on_message(
        Message::Known {
            crdt: key(),
            ids: vec![items[1].0.id, bogus],
        },
        &replica,
    );
    let Some(Effect::Send(Message::Have { sample, .. })) = effects.first() else {
        panic!("expected a second round, got {effects:?}");
    };
    assert!(sample.contains(&items[3].0.id) && !sample.contains(&items[1].0.id));
    // They hold commit 2 as well: we send exactly 3 and 4.
    let effects = s.on_message(
        Message::Known {
            crdt: key(),
            ids: vec![items[2].0.id],
        },
        &replica,
    );
    assert!(matches!(
        effects.last(),
        Some(Effect::SendCommits { ids, heads, .. })
            if ids == &vec![items[3].0.id, items[4].0.id] && heads == &vec![items[4].0.id]
    ));
}

#[test]
fn undecodable_frames_are_answered_with_a_typed_error_and_a_clean_close() {
    let codec = Codec::default();
    let cases = [
        (
            codec.decode_frame(replikativ::protocol::Frame::Text("hi")),
            ErrorCode::TextFrame,
        ),
        (
            codec.decode(&[0x81, 0xa3, b'f', b'o', b'o', 0xc0]),
            ErrorCode::UnknownKind,
        ),
        (
            codec.decode(&[0x81, 0xa4, b'p', b'i', b'n', b'g']),
            ErrorCode::Malformed,
        ),
    ];
    for (result, code) in cases {
        let (mut s, _) = ready();
        let err = result.expect_err("refused");
        let effects = s.on_decode_error(err);
        assert!(
            matches!(
                &effects[..],
                [
                    Effect::Send(Message::Error { code: c, .. }),
                    Effect::Close { reason: CloseReason::Protocol(_) }
                ] if *c == code
            ),
            "{effects:?}"
        );
        assert!(s.is_closed());
    }
}

/// The `Forbidden` error among `effects`, and the `Refused` effect for `request`.
fn forbidden(effects: &[Effect], request: Request) -> String {
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Refused { peer, crdt, request: r } if *peer == their_key() && *crdt == key() && *r == request)
        ),
        "{effects:?}"
    );
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Close { .. })),
        "the connection stays: {effects:?}"
    );
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Send(Message::Error {
                code: ErrorCode::Forbidden,
                message,
            }) => Some(message.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Forbidden error in {effects:?}"))
}

#[test]
fn a_subscribe_without_read_is_refused_naming_the_cdvcs_and_the_right() {
    let replica = Replica::new(US, vec![key()]);
    let root = Commit::root(&key()).id;
    let subscribe = Message::Subscribe { crdts: vec![key()] };
    let heads = Message::Heads {
        crdt: key(),
        heads: vec![root],
    };
    // A `Subscribe`, or a first `Heads` standing in for it: the same rights check.
    for request in [subscribe, heads] {
        // Neither right: refused and not shared.
        let mut s = serving(Rights::NONE, &replica);
        let effects = s.on_message(request.clone(), &replica);
        let message = forbidden(&effects, Request::Subscribe);
        assert!(
            message.contains(&key().to_string()) && message.contains("read"),
            "{message}"
        );
        assert!(
            !effects
                .iter()
                .any(|e| matches!(e, Effect::Send(Message::Heads { .. }))),
            "{request:?}: {effects:?}"
        );
        assert_eq!(s.shared().count(), 0);
        // Write only: refused for reading, shared so that it can send its commits.
        let mut s = serving(Rights::WRITE, &replica);
        let effects = s.on_message(request.clone(), &replica);
        forbidden(&effects, Request::Subscribe);
        assert!(
            effects
                .iter()
                .any(|e| matches!(e, Effect::Send(Message::Heads { .. }))),
            "{request:?}: {effects:?}"
        );
        assert_eq!(s.shared().cloned().collect::<Vec<_>>(), vec![key()]);
        assert!(!s.is_closed());
    }
}

#[test]
fn commits_without_write_are_refused_nothing_is_applied_and_the_connection_stays() {
    let (mut s, replica) = ready_as(SyncLimits::default(), Rights::READ);
    let items = chain(3);
    assert!(
        s.on_message(values(&items), &replica).is_empty(),
        "values are dropped"
    );
    let effects = s.on_message(commits(&items), &replica);
    assert!(!effects.iter().any(|e| matches!(e, Effect::Apply { .. })));
    let message = forbidden(&effects, Request::Push);
    assert!(
        message.contains(&key().to_string()) && message.contains("write"),
        "{message}"
    );
    // Still replicating the other way, and still answering.
    let effects = s.on_message(Message::Ping(3), &replica);
    assert!(matches!(&effects[..], [Effect::Send(Message::Pong(3))]));
}

#[test]
fn nothing_is_sent_to_a_peer_without_read() {
    let (mut s, mut replica) = ready_as(SyncLimits::default(), Rights::WRITE);
    replica.commit(&key(), &[b"ours".to_vec()], 1);
    assert!(s.on_local_change(&key(), &replica).is_empty());
    let root = Commit::root(&key()).id;
    let effects = s.on_message(
        Message::Heads {
            crdt: key(),
            heads: vec![root],
        },
        &replica,
    );
    assert!(
        !effects.iter().any(|e| matches!(
            e,
            Effect::SendCommits { .. } | Effect::Send(Message::Have { .. })
        )),
        "{effects:?}"
    );
    // Its own commits are still taken.
    let items = chain(2);
    s.on_message(values(&items), &replica);
    let effects = s.on_message(commits(&items), &replica);
    assert!(
        matches!(&effects[..], [Effect::Apply { .. }]),
        "{effects:?}"
    );
}

#[test]
fn rights_changed_on_a_live_session_apply_at_once() {
    let (mut s, mut replica) = ready_as(SyncLimits::default(), Rights::ALL);
    assert!(!s.set_rights(Rights::READ), "read was not gained");
    let items = chain(1);
    s.on_message(values(&items), &replica);
    forbidden(&s.on_message(commits(&items), &replica), Request::Push);
    assert!(!s.set_rights(Rights::WRITE));
    replica.commit(&key(), &[b"ours".to_vec()], 1);
    assert!(
        s.on_local_change(&key(), &replica).is_empty(),
        "read was withdrawn"
    );
    assert!(s.set_rights(Rights::ALL), "read was gained");
    assert!(matches!(
        &s.on_local_change(&key(), &replica)[..],
        [Effect::SendCommits { .. }]
    ));
}

#[test]
fn a_forbidden_error_from_the_peer_is_reported_and_the_connection_stays() {
    let (mut s, replica) = ready();
    let effects = s.on_message(
        Message::Error {
            code: ErrorCode::Forbidden,
            message: "CDVCS x: commits refused".into(),
        },
        &replica,
    );
    assert!(
        matches!(&effects[..], [Effect::RefusedByPeer { message }] if message.contains("refused"))
    );
    assert!(!s.is_closed());
    let effects = s.on_message(
        Message::Error {
            code: ErrorCode::Unauthorized,
            message: "unknown peer key".into(),
        },
        &replica,
    );
    assert!(matches!(&effects[..], [Effect::Close { reason }] if reason.is_refusal()));
    assert!(s.is_closed());
}

#[test]
fn the_lag_counts_commits_neither_sent_to_the_peer_nor_known_to_it() {
    use std::collections::BTreeMap;
    let mut replica = Replica::new(US, vec![key()]);
    replica.commit(&key(), &[b"one".to_vec()], 1);
    let root = Commit::root(&key()).id;
    let mut s = serving(Rights::ALL, &replica);
    assert!(s.lag(&[key()], &replica).is_empty(), "not shared yet");
    // The peer subscribes holding only the root: our commit goes out, nothing is behind.
    let effects = s.on_message(
        Message::Heads {
            crdt: key(),
            heads: vec![root],
        },
        &replica,
    );
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::SendCommits { .. })),
        "{effects:?}"
    );
    assert_eq!(s.lag(&[key()], &replica), BTreeMap::from([(key(), 0)]));
    // Two local commits not yet sent: the peer is two behind, until they go out.
    replica.commit(&key(), &[b"two".to_vec()], 2);
    replica.commit(&key(), &[b"three".to_vec()], 3);
    assert_eq!(s.lag(&[key()], &replica), BTreeMap::from([(key(), 2)]));
    let effects = s.on_local_change(&key(), &replica);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::SendCommits { .. })),
        "{effects:?}"
    );
    assert_eq!(s.lag(&[key()], &replica), BTreeMap::from([(key(), 0)]));
}

/// A dialling session whose peer offers more CDVCSs new here than its subscription limit takes
/// what fits and declines the rest (not shared, nothing created, reported once), and stays
/// open: the peer's offers are not its request. (An accepting session closes instead; see
/// the hostile tests.)
#[test]
fn a_dialling_session_declines_offers_beyond_its_limit_and_stays_open() {
    let replica = Replica::new(US, vec![]);
    let mut s = SyncSession::new(SessionConfig {
        handshake: Handshake::new(us(), Role::Dialler, [10; 32], None),
        subscriptions: Vec::new(),
        limits: SyncLimits {
            max_subscriptions: 2,
            ..SyncLimits::default()
        },
    });
    let [Effect::Send(hello)] = &s.start()[..] else {
        panic!("start sends hello only");
    };
    authenticate(&mut s, &hello.clone(), &replica, Rights::ALL);
    let offered: Vec<CrdtKey> = (0..4)
        .map(|i| CrdtKey::new("mail:a@x.org", Uuid::from_u128(100 + i)))
        .collect();
    let mut created = Vec::new();
    let mut declined = 0;
    for k in &offered {
        let heads = Message::Heads {
            crdt: k.clone(),
            heads: vec![Commit::root(k).id],
        };
        for e in s.on_message(heads, &replica) {
            match e {
                Effect::EnsureReplica(k) => created.push(k),
                Effect::Declined { max } => {
                    assert_eq!(max, 2);
                    declined += 1;
                }
                Effect::Close { reason } => panic!("closed: {reason}"),
                _ => {}
            }
        }
    }
    assert_eq!(created, offered[..2].to_vec());
    assert_eq!(declined, 1, "reported once");
    assert!(!s.is_closed());
    assert_eq!(
        s.shared().cloned().collect::<Vec<_>>(),
        offered[..2].to_vec()
    );
}
