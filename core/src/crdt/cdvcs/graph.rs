//! Interned commit-graph storage.
//!
//! Every commit gets a dense `u32` index in insertion order; parents are stored as indices in
//! one flat arena. Invariants that every algorithm relies on:
//!
//! - a commit is inserted only after all its parents, so the graph is a DAG and an index is
//!   always larger than the indices of its parents;
//! - `generation = 1 + max(parent generations)` (1 for a root), so a strict ancestor always has
//!   a strictly smaller generation;
//! - `has_child` is set once any commit lists this one as a parent and never cleared.

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

/// One commit as stored: 48 bytes plus 4 bytes per parent in the arena.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub(crate) id: Id,
    par_start: u32,
    par_len: u32,
    pub(crate) generation: u32,
    pub(crate) has_child: bool,
}

/// The commit graph: id → index, nodes by index, parents in one arena.
#[derive(Clone, Debug, Default)]
pub(crate) struct Graph {
    index: FastMap<Id, u32>,
    nodes: Vec<Node>,
    parents: Vec<u32>,
}

/// Why an entry could not be inserted (the caller turns it into a `CdvcsError`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InsertError {
    /// A parent is not in the graph.
    MissingParent(Id),
    /// More than `u32::MAX` commits or parent links.
    Full,
}

impl Graph {
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn idx(&self, id: &Id) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub(crate) fn node(&self, idx: u32) -> &Node {
        &self.nodes[idx as usize]
    }

    pub(crate) fn id(&self, idx: u32) -> Id {
        self.nodes[idx as usize].id
    }

    pub(crate) fn generation(&self, idx: u32) -> u32 {
        self.nodes[idx as usize].generation
    }

    /// Parent indices of `idx`, in the commit's order.
    pub(crate) fn parents_of(&self, idx: u32) -> &[u32] {
        let n = &self.nodes[idx as usize];
        &self.parents[n.par_start as usize..(n.par_start + n.par_len) as usize]
    }

    /// Parent ids of `idx`, in order.
    pub(crate) fn parent_ids(&self, idx: u32) -> Vec<Id> {
        self.parents_of(idx).iter().map(|&p| self.id(p)).collect()
    }

    /// Whether `idx`'s parents are exactly `ids`, in order.
    pub(crate) fn parents_equal(&self, idx: u32, ids: &[Id]) -> bool {
        let ps = self.parents_of(idx);
        ps.len() == ids.len() && ps.iter().zip(ids).all(|(&p, id)| self.id(p) == *id)
    }

    /// All nodes in insertion order (parents before children).
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Whether `commits` more commits with `links` parent links still fit the `u32` indices.
    pub(crate) fn can_fit(&self, commits: usize, links: usize) -> bool {
        let limit = u32::MAX as usize;
        self.nodes.len().saturating_add(commits) < limit
            && self.parents.len().saturating_add(links) < limit
    }

    pub(crate) fn reserve(&mut self, commits: usize) {
        self.index.reserve(commits);
        self.nodes.reserve(commits);
        self.parents.reserve(commits);
    }

    /// Inserts `id` with `parents` (all already present). Returns the new index, or the
    /// existing one when `id` is present (its stored parents are kept).
    pub(crate) fn insert(&mut self, id: Id, parents: &[Id]) -> Result<u32, InsertError> {
        if let Some(i) = self.idx(&id) {
            return Ok(i);
        }
        let mut generation = 0u32;
        let start = self.parents.len();
        for p in parents {
            let Some(pi) = self.idx(p) else {
                self.parents.truncate(start);
                return Err(InsertError::MissingParent(*p));
            };
            generation = generation.max(self.generation(pi));
            self.parents.push(pi);
        }
        let (Ok(par_start), Ok(par_len), Ok(idx)) = (
            u32::try_from(start),
            u32::try_from(parents.len()),
            u32::try_from(self.nodes.len()),
        ) else {
            self.parents.truncate(start);
            return Err(InsertError::Full);
        };
        for k in start..self.parents.len() {
            let p = self.parents[k] as usize;
            self.nodes[p].has_child = true;
        }
        self.nodes.push(Node {
            id,
            par_start,
            par_len,
            generation: generation.saturating_add(1),
            has_child: false,
        });
        self.index.insert(id, idx);
        Ok(idx)
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
        let m = g.insert(id(4), &[id(1), id(3)]).expect("4");
        assert_eq!(g.generation(m), 4);
        assert_eq!(g.parent_ids(m), vec![id(1), id(3)]);
        assert!(g.node(g.idx(&id(1)).expect("1")).has_child);
        assert!(!g.node(m).has_child);
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
        assert!(!g.node(0).has_child);
        assert!(g.parents_of(0).is_empty());
    }
}
