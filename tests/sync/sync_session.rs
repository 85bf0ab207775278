//! One `SyncSession` driven by hand: handshake rules, verification that refuses whole
//! batches (reported with peer and id), bounds, deferral of heads while applying, no echo.

use crate::support::dag::Replica;
use replikativ::Id;
use replikativ::crdt::{Commit, CrdtKey, Transaction};
use replikativ::protocol::{Blob, ByteBuf, Codec, ErrorCode, Message, ProtocolError};
use replikativ::sync::{CloseReason, Effect, SessionConfig, SyncError, SyncLimits, SyncSession};
use uuid::Uuid;

const US: Uuid = Uuid::from_u128(1);
const THEM: Uuid = Uuid::from_u128(2);

fn key() -> CrdtKey {
    CrdtKey::new("mail:a@x.org", Uuid::from_u128(9))
}

fn session_with(limits: SyncLimits) -> SyncSession {
    SyncSession::new(SessionConfig {
        local_peer: US,
        subscriptions: vec![key()],
        limits,
    })
}

/// A session past the handshake with `key()` shared, and our replica.
fn ready() -> (SyncSession, Replica) {
    ready_with(SyncLimits::default())
}

fn ready_with(limits: SyncLimits) -> (SyncSession, Replica) {
    let replica = Replica::new(US, vec![key()]);
    let mut s = session_with(limits);
    s.start();
    s.on_message(Message::hello(THEM), &replica);
    let effects = s.on_message(Message::Subscribed { crdts: vec![key()] }, &replica);
    assert!(matches!(effects[..], [Effect::Send(Message::Heads { .. })]));
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
    }
}

fn assert_rejected_and_closed(effects: &[Effect], bad: Id, code: ErrorCode) {
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Apply { .. })),
        "nothing of a refused batch is applied: {effects:?}"
    );
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Reject { peer: Some(p), id, .. } if *p == THEM && *id == bad)
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
fn start_sends_hello_then_subscribe() {
    let mut s = session_with(SyncLimits::default());
    let effects = s.start();
    assert!(matches!(
        &effects[..],
        [Effect::Send(Message::Hello { peer_id, .. }), Effect::Send(Message::Subscribe { crdts })]
            if *peer_id == US && crdts == &vec![key()]
    ));
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
                reason: CloseReason::Unexpected { kind: "ping", .. }
            }
        ]
    ));
    assert!(s.is_closed());
    assert!(s.on_message(Message::hello(THEM), &replica).is_empty());
}

#[test]
fn a_hello_with_another_version_is_answered_with_an_error_and_a_close() {
    let replica = Replica::new(US, vec![]);
    let mut s = session_with(SyncLimits::default());
    let effects = s.on_message(
        Message::Hello {
            version: 99,
            peer_id: THEM,
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
                reason: CloseReason::Protocol(ProtocolError::WrongVersion { theirs: 99, .. })
            }
        ]
    ));
}

#[test]
fn connecting_to_ourselves_is_refused() {
    let replica = Replica::new(US, vec![]);
    let mut s = session_with(SyncLimits::default());
    let effects = s.on_message(Message::hello(US), &replica);
    assert!(matches!(
        effects.last(),
        Some(Effect::Close { reason: CloseReason::SelfConnection(p) }) if *p == US
    ));
}

#[test]
fn a_subscription_to_a_missing_crdt_creates_an_empty_replica_and_sends_root_heads() {
    let replica = Replica::new(US, vec![]);
    let mut s = session_with(SyncLimits::default());
    s.on_message(Message::hello(THEM), &replica);
    let effects = s.on_message(Message::Subscribe { crdts: vec![key()] }, &replica);
    let root = Commit::root(&key()).id;
    assert!(matches!(
        &effects[..],
        [
            Effect::EnsureReplica(k),
            Effect::Send(Message::Heads { heads, .. })
        ] if *k == key() && heads == &vec![root]
    ));
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
            if *peer == THEM && ids == &vec![ours]
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
        .insert((THEM, key()), vec![items[1].0.id, bogus]);
    let mut s = session_with(SyncLimits::default());
    s.start();
    s.on_message(Message::hello(THEM), &replica);
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
