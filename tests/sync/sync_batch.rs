//! `plan_frames`: catch-ups split into bounded frames, values before the commits that need
//! them, each value once, heads last.

use std::collections::HashSet;

use replikativ::Id;
use replikativ::crdt::CrdtKey;
use replikativ::protocol::{Codec, Message};
use replikativ::sync::{BatchError, BatchLimits, OutgoingCommit, plan_frames};
use uuid::Uuid;

fn key() -> CrdtKey {
    CrdtKey::new("u", Uuid::from_u128(3))
}

/// `n` fake commits of `size` bytes, each referencing a value of `size` bytes shared by
/// pairs of commits.
fn items(n: usize, size: usize) -> Vec<OutgoingCommit> {
    (0..n)
        .map(|i| {
            let bytes = vec![i as u8; size];
            let value = format!("{:0>width$}", i / 2, width = size).into_bytes();
            OutgoingCommit {
                id: Id::of(&[bytes.clone(), vec![i as u8, (i >> 8) as u8]].concat()),
                bytes,
                values: vec![(Id::of(&value), value)],
                packs: Vec::new(),
                signature: None,
            }
        })
        .collect()
}

#[test]
fn a_large_catch_up_is_split_into_frames_under_the_byte_limit() {
    let limits = BatchLimits {
        max_bytes: 64 << 10,
        ..BatchLimits::default()
    };
    let frames = plan_frames(&key(), items(500, 1000), vec![Id::of(b"h")], &limits).expect("plan");
    let codec = Codec::default();
    let commit_frames = frames
        .iter()
        .filter(|m| matches!(m, Message::Commits { .. }))
        .count();
    assert!(commit_frames > 5, "{commit_frames} commit frames");
    for m in &frames {
        let len = codec.encode(m).expect("encode").len();
        assert!(
            len <= limits.max_bytes + 1024,
            "{} frame of {len} bytes",
            m.kind()
        );
    }
    assert!(
        matches!(frames.last(), Some(Message::Heads { heads, .. }) if heads == &vec![Id::of(b"h")])
    );
}

#[test]
fn every_value_precedes_the_commits_frame_that_needs_it_and_is_sent_once() {
    let limits = BatchLimits {
        max_bytes: 16 << 10,
        max_commits: 7,
        ..BatchLimits::default()
    };
    let input = items(200, 500);
    let frames = plan_frames(&key(), input.clone(), vec![], &limits).expect("plan");
    let mut sent: HashSet<Id> = HashSet::new();
    let mut commits_seen = Vec::new();
    for m in &frames {
        match m {
            Message::Values { values, .. } => {
                for v in values {
                    assert!(sent.insert(v.id), "value {} sent twice", v.id);
                }
            }
            Message::Commits { commits, .. } => {
                assert!(commits.len() <= 7);
                for c in commits {
                    let item = input.iter().find(|i| i.id == c.id).expect("known commit");
                    for (vid, _) in &item.values {
                        assert!(
                            sent.contains(vid),
                            "value needed by {} not sent first",
                            c.id
                        );
                    }
                    commits_seen.push(c.id);
                }
            }
            _ => {}
        }
    }
    let order: Vec<Id> = input.iter().map(|i| i.id).collect();
    assert_eq!(
        commits_seen, order,
        "commits keep their parents-first order"
    );
}

#[test]
fn an_item_larger_than_a_frame_may_carry_is_refused_by_id() {
    let limits = BatchLimits {
        max_item: 100,
        ..BatchLimits::default()
    };
    let big = items(1, 101);
    let id = big[0].id;
    let err = plan_frames(&key(), big, vec![], &limits).expect_err("too large");
    assert!(matches!(err, BatchError::ItemTooLarge { id: i, len: 101, max: 100 } if i == id));
}

#[test]
fn nothing_to_send_is_just_the_heads() {
    let frames = plan_frames(&key(), vec![], vec![], &BatchLimits::default()).expect("plan");
    assert!(matches!(&frames[..], [Message::Heads { .. }]));
}
