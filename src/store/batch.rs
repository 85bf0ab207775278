//! [`WriteBatch`]: values, blobs and state changes that commit together or not at all.

use std::collections::{BTreeMap, BTreeSet};

use crate::id::{Id, Verified};
use crate::pack::VerifiedPack;
use crate::store::error::StoreError;

/// What a batch does to one state key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StateOp {
    Put(Vec<u8>),
    Delete,
}

/// A set of writes applied in one durable transaction by [`crate::store::Store::write`].
///
/// Values and blobs are content-addressed: the batch computes their ids itself or takes them
/// from a [`Verified`] (made only by hashing), so an id in a batch always matches its bytes. State changes to the same key keep only the last one.
///
/// The values of one batch are stored compressed together (a pack, issue 16) in the order
/// they were added, except the records the store keeps loose (commit records, read one by one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) values: BTreeMap<Id, Vec<u8>>,
    /// The ids of `values` in the order they were first added (how packs group them).
    pub(crate) order: Vec<Id>,
    /// Values stored loose, never packed: commit records.
    pub(crate) loose: BTreeSet<Id>,
    /// Each commit record of the batch with the params its transactions name (none for a
    /// root, whose param names its CDVCS): the store finds these values through the commit
    /// (format 3), so they need no index entry of their own.
    pub(crate) commits: Vec<(Id, Vec<Id>)>,
    /// Packs received as they are (their values hashed once on receipt): stored verbatim.
    pub(crate) packs: Vec<VerifiedPack>,
    pub(crate) blobs: BTreeMap<Id, Vec<u8>>,
    pub(crate) state: BTreeMap<Vec<u8>, StateOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> WriteBatch {
        WriteBatch::default()
    }

    /// Adds a value (its exact MessagePack bytes) and returns its id, BLAKE3 of these bytes.
    pub fn put_value(&mut self, bytes: Vec<u8>) -> Id {
        let id = Id::of(&bytes);
        self.insert_value(id, bytes);
        id
    }

    fn insert_value(&mut self, id: Id, bytes: Vec<u8>) {
        if self.values.insert(id, bytes).is_none() {
            self.order.push(id);
        }
    }

    /// Adds a record the store keeps loose (a commit record: read alone, often, and hardly
    /// compressible), already hashed where it was made or received.
    pub(crate) fn put_record(&mut self, value: Verified) -> Id {
        let (id, bytes) = value.into_parts();
        self.insert_value(id, bytes);
        self.loose.insert(id);
        id
    }

    /// Adds a commit record (kept loose, see [`put_record`](Self::put_record)) and the
    /// params its transactions name (empty for a root): params in the same batch are packed
    /// together and found through the commit, with no index entry per value.
    pub(crate) fn put_commit(&mut self, value: Verified, params: Vec<Id>) -> Id {
        let id = self.put_record(value);
        self.commits.push((id, params));
        id
    }

    /// Adds a value whose id the caller already knows (e.g. from a peer), after checking it.
    pub fn put_value_with_id(&mut self, id: Id, bytes: Vec<u8>) -> Result<(), StoreError> {
        let actual = Id::of(&bytes);
        if actual != id {
            return Err(StoreError::IdMismatch {
                claimed: id,
                actual,
            });
        }
        self.insert_value(id, bytes);
        Ok(())
    }

    /// Adds a value already hashed where it entered (e.g. received and checked by the codec)
    /// and returns its id, without hashing it again.
    pub fn put_verified_value(&mut self, value: Verified) -> Id {
        let (id, bytes) = value.into_parts();
        self.insert_value(id, bytes);
        id
    }

    /// Adds a pack as received from a peer (its values hashed once on receipt): stored as
    /// these bytes, not compressed again; a commit of the batch naming its values finds
    /// them there.
    pub fn put_pack(&mut self, pack: VerifiedPack) {
        self.packs.push(pack);
    }

    /// Adds a binary blob (any bytes, not MessagePack) and returns its id.
    pub fn put_blob(&mut self, bytes: Vec<u8>) -> Id {
        let id = Id::of(&bytes);
        self.blobs.insert(id, bytes);
        id
    }

    /// Sets a state record; a later change to the same key in this batch wins.
    pub fn put_state(&mut self, key: impl Into<Vec<u8>>, bytes: Vec<u8>) {
        self.state.insert(key.into(), StateOp::Put(bytes));
    }

    /// Removes a state record (a no-op if absent).
    pub fn delete_state(&mut self, key: impl Into<Vec<u8>>) {
        self.state.insert(key.into(), StateOp::Delete);
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
            && self.blobs.is_empty()
            && self.state.is_empty()
            && self.packs.is_empty()
    }

    /// Number of values, blobs and state changes in the batch.
    pub fn len(&self) -> usize {
        self.values.len() + self.blobs.len() + self.state.len() + self.packs.len()
    }

    /// Total bytes of values, blobs and state records, for sizing group commits.
    pub fn byte_size(&self) -> usize {
        let state: usize = self
            .state
            .iter()
            .map(|(k, op)| {
                k.len()
                    + match op {
                        StateOp::Put(v) => v.len(),
                        StateOp::Delete => 0,
                    }
            })
            .sum();
        self.values.values().map(Vec::len).sum::<usize>()
            + self.blobs.values().map(Vec::len).sum::<usize>()
            + self.packs.iter().map(|p| p.bytes().len()).sum::<usize>()
            + state
    }

    /// Appends `other`: its state changes apply after this batch's.
    pub fn merge(&mut self, other: WriteBatch) {
        let mut values = other.values;
        for id in other.order {
            if let Some(bytes) = values.remove(&id) {
                self.insert_value(id, bytes);
            }
        }
        self.loose.extend(other.loose);
        self.commits.extend(other.commits);
        self.packs.extend(other.packs);
        self.blobs.extend(other.blobs);
        self.state.extend(other.state);
    }

    /// The ids of the values in the batch, in id order.
    pub fn value_ids(&self) -> impl Iterator<Item = &Id> {
        self.values.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_value_with_wrong_id_is_refused() {
        let mut b = WriteBatch::new();
        let err = b
            .put_value_with_id(Id::of(b"a"), b"b".to_vec())
            .expect_err("mismatch");
        assert!(matches!(err, StoreError::IdMismatch { .. }));
        assert!(b.is_empty());
        b.put_value_with_id(Id::of(b"a"), b"a".to_vec())
            .expect("ok");
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn merge_lets_the_later_state_change_win() {
        let mut a = WriteBatch::new();
        a.put_state(b"k".to_vec(), b"1".to_vec());
        let mut b = WriteBatch::new();
        b.delete_state(b"k".to_vec());
        b.put_value(b"v".to_vec());
        a.merge(b);
        assert_eq!(a.state.get(&b"k"[..]), Some(&StateOp::Delete));
        assert_eq!(a.len(), 2);
    }
}
