//! Observed-remove map (DESIGN §5): key → values, each value added under a unique [`Tag`].
//!
//! State = live adds (tag → key, value) + removed tags. Concurrent assocs of one key keep
//! every value; a dissoc removes exactly the tags it observed, so a concurrent assoc survives
//! it. The join is the union of both parts with removed tags dropped from the adds, which is
//! commutative, associative and idempotent, and accepts a removal before its add (the
//! tombstone waits). Tombstones are kept forever, as in the original.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The unique tag of one assoc. [`Tag::random`] gives a fresh one; tests may pick their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag(pub Uuid);

impl Tag {
    /// A random (v4 UUID) tag: unique without coordination (feature `native`).
    #[cfg(feature = "native")]
    pub fn random() -> Tag {
        Tag(Uuid::new_v4())
    }
}

/// Why an OR-Map operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrMapError {
    /// The tag was used before (added or removed): tags must be unique.
    #[error("tag {tag:?} was already used in this map")]
    TagReused {
        /// The reused tag.
        tag: Tag,
    },
}

/// What an OR-Map replica broadcasts: tagged adds and removed tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrMapOp<K, V> {
    /// Added values with their tags.
    pub adds: Vec<(Tag, K, V)>,
    /// Tags removed.
    pub removes: Vec<Tag>,
}

/// An observed-remove map from `K` to a set of concurrently assigned `V`s.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Ord + Clone + Deserialize<'de>, V: Ord + Deserialize<'de>"
))]
#[serde(from = "OrMapRepr<K, V>")]
pub struct OrMap<K, V> {
    adds: BTreeMap<Tag, (K, V)>,
    removed: BTreeSet<Tag>,
    /// Live tags per key; derived from `adds`, so not serialized.
    #[serde(skip_serializing)]
    by_key: BTreeMap<K, BTreeSet<Tag>>,
}

#[derive(Deserialize)]
struct OrMapRepr<K, V> {
    adds: BTreeMap<Tag, (K, V)>,
    removed: BTreeSet<Tag>,
}

impl<K: Ord + Clone, V: Ord> From<OrMapRepr<K, V>> for OrMap<K, V> {
    fn from(r: OrMapRepr<K, V>) -> Self {
        let mut map = OrMap::new();
        map.removed = r.removed;
        for (tag, (k, v)) in r.adds {
            map.add(tag, k, v);
        }
        map
    }
}

impl<K: Ord + Clone, V: Ord> Default for OrMap<K, V> {
    fn default() -> Self {
        OrMap::new()
    }
}

impl<K: Ord + Clone, V: Ord> OrMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        OrMap {
            adds: BTreeMap::new(),
            removed: BTreeSet::new(),
            by_key: BTreeMap::new(),
        }
    }

    /// Adds `value` under `key` with the fresh `tag`; values other replicas assign to `key`
    /// concurrently are kept beside it. Refused when `tag` was used before.
    pub fn assoc(&mut self, tag: Tag, key: K, value: V) -> Result<OrMapOp<K, V>, OrMapError>
    where
        V: Clone,
    {
        if self.adds.contains_key(&tag) || self.removed.contains(&tag) {
            return Err(OrMapError::TagReused { tag });
        }
        self.add(tag, key.clone(), value.clone());
        Ok(OrMapOp {
            adds: vec![(tag, key, value)],
            removes: Vec::new(),
        })
    }

    /// Removes the values of `key` this replica has observed; a concurrent assoc survives.
    pub fn dissoc(&mut self, key: &K) -> OrMapOp<K, V> {
        let tags: Vec<Tag> = self
            .by_key
            .get(key)
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default();
        for t in &tags {
            self.remove(*t);
        }
        OrMapOp {
            adds: Vec::new(),
            removes: tags,
        }
    }

    /// The values of `key`, ordered by tag (deterministic across replicas).
    pub fn get(&self, key: &K) -> Vec<&V> {
        self.by_key
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|t| self.adds.get(t).map(|(_, v)| v))
            .collect()
    }

    /// Keys with at least one value, in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.by_key.keys()
    }

    /// Number of keys with at least one value.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key has a value.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Applies an op from any replica (the join with the op's content).
    pub fn downstream(&mut self, op: &OrMapOp<K, V>)
    where
        V: Clone,
    {
        for t in &op.removes {
            self.remove(*t);
        }
        for (tag, k, v) in &op.adds {
            if !self.removed.contains(tag) {
                self.add(*tag, k.clone(), v.clone());
            }
        }
    }

    /// The whole state as one op; applying it to another replica joins the two.
    pub fn to_op(&self) -> OrMapOp<K, V>
    where
        V: Clone,
    {
        OrMapOp {
            adds: (self.adds.iter())
                .map(|(t, (k, v))| (*t, k.clone(), v.clone()))
                .collect(),
            removes: self.removed.iter().copied().collect(),
        }
    }

    /// Joins `other` into this state.
    pub fn join(&mut self, other: &OrMap<K, V>)
    where
        V: Clone,
    {
        self.downstream(&other.to_op());
    }

    /// Inserts a live add. A tag seen twice with different contents (only from a faulty
    /// peer) keeps the larger `(key, value)`, so the join stays deterministic.
    fn add(&mut self, tag: Tag, key: K, value: V) {
        if let Some((k, v)) = self.adds.get(&tag) {
            if (k, v) >= (&key, &value) {
                return;
            }
            let old = k.clone();
            self.unindex(&old, tag);
        }
        self.by_key.entry(key.clone()).or_default().insert(tag);
        self.adds.insert(tag, (key, value));
    }

    fn remove(&mut self, tag: Tag) {
        self.removed.insert(tag);
        if let Some((k, _)) = self.adds.remove(&tag) {
            self.unindex(&k, tag);
        }
    }

    fn unindex(&mut self, key: &K, tag: Tag) {
        if let Some(tags) = self.by_key.get_mut(key) {
            tags.remove(&tag);
            if tags.is_empty() {
                self.by_key.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u128) -> Tag {
        Tag(Uuid::from_u128(n))
    }

    #[test]
    fn concurrent_assocs_of_one_key_keep_both_values() {
        let mut a: OrMap<&str, u32> = OrMap::new();
        let mut b = a.clone();
        let oa = a.assoc(tag(1), "k", 10).expect("assoc");
        let ob = b.assoc(tag(2), "k", 20).expect("assoc");
        a.downstream(&ob);
        b.downstream(&oa);
        assert_eq!(a, b);
        assert_eq!(a.get(&"k"), vec![&10, &20]);
    }

    #[test]
    fn dissoc_removes_only_what_it_observed() {
        let mut a: OrMap<&str, u32> = OrMap::new();
        let o1 = a.assoc(tag(1), "k", 1).expect("assoc");
        let mut b = a.clone();
        let o2 = b.assoc(tag(2), "k", 2).expect("assoc");
        let rm = a.dissoc(&"k");
        assert!(a.get(&"k").is_empty());
        a.downstream(&o2);
        b.downstream(&rm);
        b.downstream(&o1);
        assert_eq!(a, b);
        assert_eq!(a.get(&"k"), vec![&2]);
    }

    #[test]
    fn a_removal_delivered_before_its_add_wins() {
        let mut a: OrMap<&str, u32> = OrMap::new();
        let add = a.assoc(tag(1), "k", 1).expect("assoc");
        let rm = a.dissoc(&"k");
        let mut b: OrMap<&str, u32> = OrMap::new();
        b.downstream(&rm);
        b.downstream(&add);
        assert!(b.is_empty());
        assert_eq!(a, b);
    }

    #[test]
    fn reusing_a_tag_is_refused() {
        let mut a: OrMap<&str, u32> = OrMap::new();
        a.assoc(tag(1), "k", 1).expect("assoc");
        a.dissoc(&"k");
        assert_eq!(
            a.assoc(tag(1), "j", 2),
            Err(OrMapError::TagReused { tag: tag(1) })
        );
    }

    #[test]
    fn msgpack_round_trip_rebuilds_the_key_index() {
        let mut a: OrMap<String, u32> = OrMap::new();
        a.assoc(tag(1), "k".into(), 1).expect("assoc");
        a.assoc(tag(2), "j".into(), 2).expect("assoc");
        a.dissoc(&"j".to_string());
        let bytes = rmp_serde::to_vec(&a).expect("encode");
        let back: OrMap<String, u32> = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(back, a);
        assert_eq!(back.get(&"k".to_string()), vec![&1]);
    }
}
