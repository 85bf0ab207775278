//! What a side offers on a connection, summarised as a tree of digests (protocol 5), so that
//! two sides holding the same CDVCSs with the same heads learn it from one digest each, and
//! sides that differ in `k` CDVCSs find them in `O(k · log n)` bytes instead of exchanging one
//! `Heads` per CDVCS.
//!
//! Each offered CDVCS is a *leaf* `(key, heads)` placed in one of `16^DEPTH` slots by a hash
//! of its key. A tree node at `level` (0 = the root, `DEPTH` = a slot) covers a range of
//! slots; its digest is a hash of the leaves in that range, in key order. Equal digests mean
//! (up to a 128-bit collision) the same CDVCSs with the same heads on both sides.
//!
//! Why 128 bits (protocol 6; 64 before): equal digests of a node share every CDVCS under it
//! at the offered heads, so a chance match of two different offers would leave a CDVCS that
//! one side lacks commits of unsynced until it changes again (then its `Heads` go out and
//! the gap is found). Accidental matches were already rare at 64 bits (≤ 4,369 nodes
//! compared per reconnect, each 2^-64), but a writer grinding commit ids could aim at a
//! victim's digest with ~2^64 hashes; at 128 bits neither is a concern, for 8 more bytes per
//! digest on the wire.

use std::collections::BTreeMap;

use crate::crdt::commit::CrdtKey;
use crate::id::Id;
pub use crate::protocol::message::Digest;

/// Children per tree node.
pub const FANOUT: u16 = 16;
/// The level of the slots (the leaves' buckets): `16^DEPTH` of them.
pub const DEPTH: u8 = 3;

/// A tree node: `(level, index)`; level 0 has the one index 0.
pub type NodeId = (u8, u16);

/// The CDVCSs one side offers the peer on a connection, with its heads of each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offer {
    leaves: BTreeMap<(u16, CrdtKey), ([u8; 32], Vec<Id>)>,
}

/// The slot of `key` (the low 12 bits of a hash of it).
pub fn slot(key: &CrdtKey) -> u16 {
    let mut h = blake3::Hasher::new();
    h.update(b"replikativ offer slot\0");
    h.update(key.user.as_bytes());
    h.update(&[0]);
    h.update(key.id.as_bytes());
    let b = h.finalize();
    u16::from_be_bytes([b.as_bytes()[0], b.as_bytes()[1]]) >> (16 - 4 * DEPTH as u32)
}

fn leaf_hash(key: &CrdtKey, heads: &[Id]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"replikativ offer leaf\0");
    h.update(&(key.user.len() as u64).to_be_bytes());
    h.update(key.user.as_bytes());
    h.update(key.id.as_bytes());
    for id in heads {
        h.update(id.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// The slots `node` covers, as a half-open range.
fn slots(node: NodeId) -> (u16, u16) {
    let (level, index) = node;
    let shift = 4 * u32::from(DEPTH - level.min(DEPTH));
    let start = u32::from(index) << shift;
    let end = (u32::from(index) + 1) << shift;
    (start as u16, end.min(1 << (4 * DEPTH as u32)) as u16)
}

impl Offer {
    /// An offer of `leaves` (each CDVCS with its heads; heads in any order).
    pub fn new(leaves: impl IntoIterator<Item = (CrdtKey, Vec<Id>)>) -> Offer {
        let leaves = leaves
            .into_iter()
            .map(|(key, mut heads)| {
                heads.sort();
                heads.dedup();
                let hash = leaf_hash(&key, &heads);
                ((slot(&key), key), (hash, heads))
            })
            .collect();
        Offer { leaves }
    }

    /// How many CDVCSs are offered.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether nothing is offered.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The offered heads of `key`, if it is offered.
    pub fn heads(&self, key: &CrdtKey) -> Option<&[Id]> {
        self.leaves
            .get(&(slot(key), key.clone()))
            .map(|(_, h)| h.as_slice())
    }

    /// The CDVCSs under `node` with their heads, in slot then key order.
    pub fn under(&self, node: NodeId) -> impl Iterator<Item = (&CrdtKey, &[Id])> {
        let (start, end) = slots(node);
        self.leaves
            .range((start, CrdtKey::new("", uuid::Uuid::nil()))..)
            .take_while(move |((s, _), _)| *s < end)
            .map(|((_, k), (_, h))| (k, h.as_slice()))
    }

    /// The digest of `node`: 128 bits of a hash of its leaves.
    pub fn digest(&self, node: NodeId) -> Digest {
        let (start, end) = slots(node);
        let mut h = blake3::Hasher::new();
        let from = (start, CrdtKey::new("", uuid::Uuid::nil()));
        for ((s, _), (leaf, _)) in self.leaves.range(from..) {
            if *s >= end {
                break;
            }
            h.update(leaf);
        }
        let mut digest = [0; 16];
        digest.copy_from_slice(&h.finalize().as_bytes()[..16]);
        crate::protocol::message::FixedBytes(digest)
    }

    /// The nodes a `Digests{level, parent}` message describes, in order: the root alone for
    /// level 0, else the `FANOUT` children of node `parent` of the level above.
    pub fn nodes(level: u8, parent: u16) -> Vec<NodeId> {
        if level == 0 {
            return vec![(0, 0)];
        }
        (0..FANOUT).map(|i| (level, parent * FANOUT + i)).collect()
    }

    /// The digests of [`nodes`](Self::nodes)`(level, parent)`.
    pub fn digests(&self, level: u8, parent: u16) -> Vec<Digest> {
        Offer::nodes(level, parent)
            .into_iter()
            .map(|n| self.digest(n))
            .collect()
    }
}

/// Whether `(level, parent)` names a tree position a `Digests` message may describe.
pub fn valid(level: u8, parent: u16) -> bool {
    match level {
        0 => parent == 0,
        l if l <= DEPTH => u32::from(parent) < FANOUT.pow(u32::from(l - 1)) as u32,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u128) -> CrdtKey {
        CrdtKey::new("mail:t@example.com", uuid::Uuid::from_u128(i))
    }

    fn offer(n: u128, bump: Option<u128>) -> Offer {
        Offer::new((0..n).map(|i| {
            let heads = if Some(i) == bump {
                vec![Id::of(b"new")]
            } else {
                vec![Id::of(&i.to_be_bytes())]
            };
            (key(i), heads)
        }))
    }

    #[test]
    fn equal_offers_have_equal_roots_and_one_change_shows_on_one_path() {
        let a = offer(1000, None);
        assert_eq!(a.digests(0, 0), offer(1000, None).digests(0, 0));
        let b = offer(1000, Some(7));
        assert_ne!(a.digest((0, 0)), b.digest((0, 0)));
        let s = slot(&key(7));
        for level in 1..=DEPTH {
            let parent = if level == 1 {
                0
            } else {
                s >> (4 * u32::from(DEPTH - level + 1))
            };
            let differ: Vec<usize> = a
                .digests(level, parent)
                .iter()
                .zip(b.digests(level, parent))
                .enumerate()
                .filter(|(_, (x, y))| **x != *y)
                .map(|(i, _)| i)
                .collect();
            let expected = (s >> (4 * u32::from(DEPTH - level))) % FANOUT;
            assert_eq!(differ, vec![usize::from(expected)], "level {level}");
        }
        let leaf = (DEPTH, s);
        assert!(b.under(leaf).any(|(k, _)| *k == key(7)));
        assert!(a.under(leaf).all(|(k, _)| slot(k) == s));
    }

    #[test]
    fn a_missing_cdvcs_changes_the_digest_and_order_of_heads_does_not() {
        let a = offer(10, None);
        let fewer = Offer::new((0..9).map(|i| (key(i), vec![Id::of(&i.to_be_bytes())])));
        assert_ne!(a.digest((0, 0)), fewer.digest((0, 0)));
        let x = Offer::new([(key(1), vec![Id::of(b"a"), Id::of(b"b")])]);
        let y = Offer::new([(key(1), vec![Id::of(b"b"), Id::of(b"a")])]);
        assert_eq!(x.digest((0, 0)), y.digest((0, 0)));
        assert_eq!(x.under((0, 0)).count(), 1);
        assert_eq!(Offer::default().under((0, 0)).count(), 0);
    }

    #[test]
    fn positions_are_bounded() {
        assert!(valid(0, 0) && !valid(0, 1));
        assert!(valid(1, 0) && !valid(1, 1));
        assert!(valid(DEPTH, 255) && !valid(DEPTH, 256) && !valid(DEPTH + 1, 0));
    }
}
