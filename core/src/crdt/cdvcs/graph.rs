//! Commit-graph storage: the commits held in memory by id, and for a store-backed CDVCS the
//! [`GraphSource`] that answers all others by id. Invariants that every algorithm relies on:
//!
//! - a commit is inserted only after all its parents are held, so the graph is a DAG;
//! - `generation = 1 + max(parent generations)` (1 for a root), so a strict ancestor always has
//!   a strictly smaller generation (the source answers it with each entry);
//! - `has_child` is set once any commit inserted here lists this one as a parent and never
//!   cleared; a commit only the source holds has a child unless it is a head.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};

use crate::id::Id;

/// Hashes ids (already uniform BLAKE3 output) with a keyed folded multiply: much cheaper than
/// SipHash, and the per-map random key keeps crafted ids from degrading the table.
#[derive(Clone, Debug)]
pub(crate) struct IdHashBuilder {
    k0: u64,
    k1: u64,
}

impl Default for IdHashBuilder {
    fn default() -> Self {
        let s = RandomState::new();
        IdHashBuilder {
            k0: s.hash_one(0x243f_6a88_85a3_08d3_u64) | 1,
            k1: s.hash_one(0x1319_8a2e_0370_7344_u64) | 1,
        }
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            state: self.k0,
            k1: self.k1,
        }
    }
}

/// The hasher built by [`IdHashBuilder`].
pub(crate) struct IdHasher {
    state: u64,
    k1: u64,
}

fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.state = fold_mul(self.state ^ u64::from_le_bytes(word), self.k1);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.state = fold_mul(self.state ^ u64::from(n), self.k1);
    }
    fn write_usize(&mut self, n: usize) {
        self.state = fold_mul(self.state ^ n as u64, self.k1);
    }
    fn finish(&self) -> u64 {
        self.state
    }
}

/// A hash map keyed by [`Id`] or by commit index, using the cheap keyed hasher.
pub(crate) type FastMap<K, V> = HashMap<K, V, IdHashBuilder>;

/// One commit's graph entry as a backing store holds it: its parents in order and its
/// generation (`1 + max(parent generations)`, 1 for a root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphEntry {
    /// The parents, in the commit's order.
    pub parents: Vec<Id>,
    /// `1 + max(parent generations)`, 1 for a root.
    pub generation: u64,
}

/// Why a backing store could not answer a lookup (its own error, as text: the pure CDVCS only
/// passes it on).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where a CDVCS finds the commits it does not hold in memory: point reads by id (e.g. the
/// store's graph entries). Every commit it answers is durable with all its ancestors, and
/// is an ancestor-or-self of one of the CDVCS's heads (DESIGN §5).
pub trait GraphSource: Send + Sync {
    /// The entry of `id`, `None` when the commit is not held.
    fn entry(&self, id: &Id) -> Result<Option<GraphEntry>, SourceError>;
}

/// One commit held in memory.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) parents: Box<[Id]>,
    pub(crate) generation: u64,
    /// Whether a commit in memory lists this one as a parent. A commit answered by the source
    /// has one unless it is a head (see [`Graph::has_child`]).
    pub(crate) has_child: bool,
}

/// The commit graph: the commits held in memory (by id, in insertion order) and, for a
/// store-backed CDVCS, the source of all others. Without a source every commit is in memory.
#[derive(Clone, Default)]
pub(crate) struct Graph {
    index: FastMap<Id, Node>,
    order: Vec<Id>,
    source: Option<std::sync::Arc<dyn GraphSource>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("in_memory", &self.order.len())
            .field("backed", &self.source.is_some())
            .finish()
    }
}

/// Why an entry could not be inserted (the caller turns it into a `CdvcsError`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// A parent is not in the graph.
    MissingParent(Id),
    /// The source failed.
    Source(Id, SourceError),
}

impl Graph {
    /// A graph backed by `source`: only what is inserted later is held in memory.
    pub(crate) fn backed(source: std::sync::Arc<dyn GraphSource>) -> Graph {
        Graph {
            source: Some(source),
            ..Graph::default()
        }
    }

    /// Whether commits not in memory are looked up in a source.
    pub(crate) fn is_backed(&self) -> bool {
        self.source.is_some()
    }

    /// Commits held in memory (all of them without a source).
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// The in-memory node of `id`.
    pub(crate) fn node(&self, id: &Id) -> Option<&Node> {
        self.index.get(id)
    }

    /// The entry of `id`, from memory or the source.
    pub(crate) fn lookup(&self, id: &Id) -> Result<Option<GraphEntry>, SourceError> {
        if let Some(n) = self.index.get(id) {
            return Ok(Some(GraphEntry {
                parents: n.parents.to_vec(),
                generation: n.generation,
            }));
        }
        match &self.source {
            Some(s) => s.entry(id),
            None => Ok(None),
        }
    }

    /// [`lookup`](Self::lookup), a failing source counted as "not held".
    pub(crate) fn get(&self, id: &Id) -> Option<GraphEntry> {
        self.lookup(id).ok().flatten()
    }

    /// The generation of `id`, from memory or the source.
    pub(crate) fn generation_of(&self, id: &Id) -> Result<Option<u64>, SourceError> {
        if let Some(n) = self.index.get(id) {
            return Ok(Some(n.generation));
        }
        Ok(self.lookup(id)?.map(|e| e.generation))
    }

    /// Whether `id` is held, in memory or in the source.
    pub(crate) fn contains(&self, id: &Id) -> Result<bool, SourceError> {
        if self.index.contains_key(id) {
            return Ok(true);
        }
        Ok(self.lookup(id)?.is_some())
    }

    /// Whether `id`, known to be held, has a child: from memory, else (a commit only the
    /// source holds) unless it is one of `heads` (every held commit is an ancestor-or-self
    /// of a head).
    pub(crate) fn has_child(&self, id: &Id, heads: &std::collections::BTreeSet<Id>) -> bool {
        match self.index.get(id) {
            Some(n) => n.has_child,
            None => !heads.contains(id),
        }
    }

    /// The commits held in memory, in insertion order (parents before children).
    pub(crate) fn ids(&self) -> &[Id] {
        &self.order
    }

    pub(crate) fn reserve(&mut self, commits: usize) {
        self.index.reserve(commits);
        self.order.reserve(commits);
    }

    /// Inserts `id` with `parents` (all already held). Returns its generation; a commit
    /// already in memory keeps its parents.
    pub(crate) fn insert(&mut self, id: Id, parents: &[Id]) -> Result<u64, InsertError> {
        if let Some(n) = self.index.get(&id) {
            return Ok(n.generation);
        }
        let mut generation = 0u64;
        for p in parents {
            let g = self
                .generation_of(p)
                .map_err(|e| InsertError::Source(*p, e))?
                .ok_or(InsertError::MissingParent(*p))?;
            generation = generation.max(g);
        }
        for p in parents {
            if let Some(n) = self.index.get_mut(p) {
                n.has_child = true;
            }
        }
        self.index.insert(
            id,
            Node {
                parents: parents.into(),
                generation: generation.saturating_add(1),
                has_child: false,
            },
        );
        self.order.push(id);
        Ok(generation.saturating_add(1))
    }

    /// Puts `id` in memory as a source answered it (a head loaded at start).
    pub(crate) fn insert_loaded(&mut self, id: Id, entry: GraphEntry) {
        if self.index.contains_key(&id) {
            return;
        }
        let node = Node {
            parents: entry.parents.into(),
            generation: entry.generation,
            has_child: false,
        };
        self.index.insert(id, node);
        self.order.push(id);
    }

    /// With a source, forgets every in-memory commit but `keep` once more than `limit` are
    /// held (they are durable in the source, which answers them again). Without one, nothing.
    pub(crate) fn trim(&mut self, limit: usize, keep: &std::collections::BTreeSet<Id>) {
        if self.source.is_none() || self.order.len() <= limit {
            return;
        }
        self.index.retain(|id, _| keep.contains(id));
        self.order.retain(|id| keep.contains(id));
        self.index.shrink_to(limit.min(1024));
        self.order.shrink_to(limit.min(1024));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> Id {
        Id::of(&n.to_le_bytes())
    }

    #[test]
    fn generations_count_the_longest_parent_path() {
        let mut g = Graph::default();
        g.insert(id(1), &[]).expect("root");
        g.insert(id(2), &[id(1)]).expect("2");
        g.insert(id(3), &[id(2)]).expect("3");
        assert_eq!(g.insert(id(4), &[id(1), id(3)]), Ok(4));
        assert_eq!(g.get(&id(4)).map(|e| e.parents), Some(vec![id(1), id(3)]));
        assert!(g.node(&id(1)).expect("1").has_child);
        assert!(!g.node(&id(4)).expect("4").has_child);
    }

    #[test]
    fn insert_with_an_absent_parent_changes_nothing() {
        let mut g = Graph::default();
        g.insert(id(1), &[]).expect("root");
        assert_eq!(
            g.insert(id(3), &[id(1), id(2)]),
            Err(InsertError::MissingParent(id(2)))
        );
        assert_eq!(g.len(), 1);
        assert!(!g.node(&id(1)).expect("1").has_child);
        assert_eq!(g.get(&id(1)).map(|e| e.parents), Some(vec![]));
    }
}
