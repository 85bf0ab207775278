//! The linear history realizers follow, and ancestry tests bounded by generation numbers.
//!
//! All walks are iterative (explicit stacks), so a chain of millions of commits cannot
//! overflow the call stack.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::id::Id;

use super::graph::{FastMap, Graph};
use super::{Cdvcs, CdvcsError};

/// Which commits a history walk has already emitted or must skip.
trait Seen {
    /// Marks `idx`; false when it was marked already.
    fn mark(&mut self, idx: u32) -> bool;
}

/// A bit per commit: for walks over the whole graph.
struct Bits(Vec<u64>);

impl Seen for Bits {
    fn mark(&mut self, idx: u32) -> bool {
        let (w, b) = ((idx / 64) as usize, idx % 64);
        let fresh = self.0[w] & (1 << b) == 0;
        self.0[w] |= 1 << b;
        fresh
    }
}

/// A sparse set: for walks that touch only a small part of the graph.
struct Sparse<'a, S> {
    graph: &'a Graph,
    visited: FastMap<u32, ()>,
    skip: &'a HashSet<Id, S>,
}

impl<S: BuildHasher> Seen for Sparse<'_, S> {
    fn mark(&mut self, idx: u32) -> bool {
        !self.skip.contains(&self.graph.id(idx)) && self.visited.insert(idx, ()).is_none()
    }
}

/// Post-order depth-first walk from `head`, parents in their order, each commit once.
fn walk(graph: &Graph, head: u32, seen: &mut impl Seen) -> Vec<Id> {
    let mut out = Vec::new();
    if !seen.mark(head) {
        return out;
    }
    let mut stack: Vec<(u32, usize)> = vec![(head, 0)];
    while let Some((cur, next)) = stack.last_mut() {
        let cur = *cur;
        match graph.parents_of(cur).get(*next) {
            Some(&p) => {
                *next += 1;
                if seen.mark(p) {
                    stack.push((p, 0));
                }
            }
            None => {
                out.push(graph.id(cur));
                stack.pop();
            }
        }
    }
    out
}

impl Cdvcs {
    fn index_of(&self, id: &Id) -> Result<u32, CdvcsError> {
        self.graph
            .idx(id)
            .ok_or(CdvcsError::UnknownCommit { id: *id })
    }

    /// The deterministic linear order of `head`'s ancestry (DESIGN §5): depth-first, parents
    /// in their order, each commit once, every commit after all its parents, ending in `head`.
    /// O(ancestors of head).
    pub fn history(&self, head: &Id) -> Result<Vec<Id>, CdvcsError> {
        let h = self.index_of(head)?;
        let mut bits = Bits(vec![0; self.graph.len().div_ceil(64)]);
        Ok(walk(&self.graph, h, &mut bits))
    }

    /// `history(head)` without the commits in `applied`, for a realizer that follows a growing
    /// CDVCS. The walk does not descend into an applied commit, so it costs O(new commits +
    /// their applied parents) rather than O(graph); when `applied` is closed under ancestry
    /// (as a realizer's set of applied commits is) the result is exactly `history(head)` with
    /// the applied commits removed, in the same order.
    pub fn history_since<S: BuildHasher>(
        &self,
        head: &Id,
        applied: &HashSet<Id, S>,
    ) -> Result<Vec<Id>, CdvcsError> {
        let h = self.index_of(head)?;
        let mut seen = Sparse {
            graph: &self.graph,
            visited: FastMap::default(),
            skip: applied,
        };
        Ok(walk(&self.graph, h, &mut seen))
    }

    /// Whether `a` is `b` or an ancestor of `b`; false when either is unknown. Only commits
    /// with a generation between theirs are visited.
    pub fn is_ancestor(&self, a: &Id, b: &Id) -> bool {
        match (self.graph.idx(a), self.graph.idx(b)) {
            (Some(a), Some(b)) => self.reaches(b, a),
            _ => false,
        }
    }

    /// Whether `to` is `from` or one of its ancestors (by index).
    pub(super) fn reaches(&self, from: u32, to: u32) -> bool {
        let g = &self.graph;
        let floor = g.generation(to);
        let mut visited: FastMap<u32, ()> = FastMap::default();
        let mut stack = vec![from];
        while let Some(cur) = stack.pop() {
            if cur == to {
                return true;
            }
            for &p in g.parents_of(cur) {
                // A strict ancestor has a smaller generation: nothing at or below `to`'s
                // generation other than `to` itself can lead to it.
                if (p == to || g.generation(p) > floor) && visited.insert(p, ()).is_none() {
                    stack.push(p);
                }
            }
        }
        false
    }
}
