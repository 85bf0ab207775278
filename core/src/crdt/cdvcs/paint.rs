//! Walks that paint two frontiers down the graph in decreasing generation order: lowest
//! common ancestors and the commits between two sets of heads.
//!
//! Commits are popped from a max-heap by generation. A commit is only ever painted by its
//! children (higher generation, popped earlier) or as a seed, so when it is popped its paint
//! is final. The walk stops as soon as no queued commit can still matter, so it visits the
//! region between the frontiers, not the whole graph.

use std::collections::{BTreeSet, BinaryHeap};

use crate::id::Id;

use super::graph::{FastMap, Graph};
use super::{Cdvcs, CdvcsError};

const A: u8 = 1;
const B: u8 = 2;
const STALE: u8 = 4;
const QUEUED: u8 = 8;

struct Painter<'g> {
    graph: &'g Graph,
    paint: FastMap<u32, u8>,
    heap: BinaryHeap<(u32, u32)>,
    /// Queued commits for which `interesting` holds; the walk ends when none is left.
    pending: usize,
    interesting: fn(u8) -> bool,
}

impl<'g> Painter<'g> {
    fn new(graph: &'g Graph, interesting: fn(u8) -> bool) -> Self {
        Painter {
            graph,
            paint: FastMap::default(),
            heap: BinaryHeap::new(),
            pending: 0,
            interesting,
        }
    }

    fn add(&mut self, idx: u32, flags: u8) {
        let interesting = self.interesting;
        let slot = self.paint.entry(idx).or_insert(0);
        let old = *slot;
        if old == 0 {
            *slot = flags | QUEUED;
            self.heap.push((self.graph.generation(idx), idx));
            if interesting(flags) {
                self.pending += 1;
            }
        } else if old & QUEUED != 0 {
            *slot = old | flags;
            // Paint only grows, and both predicates only turn from true to false as it grows.
            if interesting(old) && !interesting(*slot) {
                self.pending -= 1;
            }
        }
    }

    fn pop(&mut self) -> Option<(u32, u8)> {
        let (_, idx) = self.heap.pop()?;
        let slot = self.paint.entry(idx).or_insert(0);
        *slot &= !QUEUED;
        let flags = *slot;
        if (self.interesting)(flags) {
            self.pending -= 1;
        }
        Some((idx, flags))
    }
}

impl Cdvcs {
    /// Lowest common ancestors of `a` and `b`: the common ancestors (each commit counts as
    /// its own ancestor) that are not ancestors of another common ancestor. Several in a
    /// criss-cross. Errors when either is unknown.
    pub fn lca(&self, a: &Id, b: &Id) -> Result<BTreeSet<Id>, CdvcsError> {
        self.lca_of_sets(&[*a], &[*b])
    }

    /// Lowest common ancestors of two sets of commits (e.g. two replicas' heads): the maximal
    /// elements of `ancestors(a) ∩ ancestors(b)`. Visits commits down to the deepest LCA only.
    pub fn lca_of_sets(&self, a: &[Id], b: &[Id]) -> Result<BTreeSet<Id>, CdvcsError> {
        let mut p = Painter::new(&self.graph, |f| f & STALE == 0);
        for (ids, flag) in [(a, A), (b, B)] {
            for id in ids {
                let i = self
                    .graph
                    .idx(id)
                    .ok_or(CdvcsError::UnknownCommit { id: *id })?;
                p.add(i, flag);
            }
        }
        let mut found: Vec<u32> = Vec::new();
        while p.pending > 0 {
            let Some((idx, mut flags)) = p.pop() else {
                break;
            };
            if flags & (A | B | STALE) == A | B {
                found.push(idx);
                flags |= STALE;
            }
            for &parent in self.graph.parents_of(idx) {
                p.add(parent, flags & (A | B | STALE));
            }
        }
        // Found in decreasing generation; the stale paint already excludes ancestors of an
        // earlier find, the check below keeps the result exact whatever the walk order.
        let lcas: Vec<u32> = found
            .iter()
            .filter(|&&x| !found.iter().any(|&y| y != x && self.reaches(y, x)))
            .copied()
            .collect();
        Ok(lcas.into_iter().map(|i| self.graph.id(i)).collect())
    }

    /// The commits reachable from `ours` (each included) and not from any of `their_known`,
    /// ordered by `(generation, id)`: parents before children, deterministic across replicas.
    /// Ids in `their_known` this state lacks are ignored; an unknown id in `ours` is an error.
    /// Visits the result plus the part of their side's ancestry down to the lowest result
    /// generation, O((result + frontier) · log), not O(graph).
    pub fn commits_between(&self, their_known: &[Id], ours: &[Id]) -> Result<Vec<Id>, CdvcsError> {
        let mut p = Painter::new(&self.graph, |f| f & A != 0 && f & B == 0);
        for id in ours {
            let i = self
                .graph
                .idx(id)
                .ok_or(CdvcsError::UnknownCommit { id: *id })?;
            p.add(i, A);
        }
        for i in their_known.iter().filter_map(|id| self.graph.idx(id)) {
            p.add(i, B);
        }
        let mut out: Vec<u32> = Vec::new();
        while p.pending > 0 {
            let Some((idx, flags)) = p.pop() else {
                break;
            };
            if flags & A != 0 && flags & B == 0 {
                out.push(idx);
            }
            for &parent in self.graph.parents_of(idx) {
                p.add(parent, flags & (A | B));
            }
        }
        let g = &self.graph;
        out.sort_by_key(|&i| (g.generation(i), g.id(i)));
        Ok(out.into_iter().map(|i| g.id(i)).collect())
    }
}
