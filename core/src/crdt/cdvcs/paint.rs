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
use super::{Cdvcs, CdvcsError, source_err};

const A: u8 = 1;
const B: u8 = 2;
const STALE: u8 = 4;
const QUEUED: u8 = 8;

struct Painter<'g> {
    graph: &'g Graph,
    paint: FastMap<Id, u8>,
    heap: BinaryHeap<(u64, Id)>,
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

    /// Paints `id` (held: its generation is looked up the first time).
    fn add(&mut self, id: Id, flags: u8) -> Result<(), CdvcsError> {
        let interesting = self.interesting;
        let old = self.paint.get(&id).copied().unwrap_or(0);
        if old == 0 {
            let generation = (self.graph.generation_of(&id).map_err(source_err(id))?)
                .ok_or(CdvcsError::UnknownCommit { id })?;
            self.paint.insert(id, flags | QUEUED);
            self.heap.push((generation, id));
            if interesting(flags) {
                self.pending += 1;
            }
        } else if old & QUEUED != 0 {
            let new = old | flags;
            self.paint.insert(id, new);
            // Paint only grows, and both predicates only turn from true to false as it grows.
            if interesting(old) && !interesting(new) {
                self.pending -= 1;
            }
        }
        Ok(())
    }

    /// The next commit by decreasing generation, its final paint and its parents.
    fn pop(&mut self) -> Result<Option<(Id, u8, Vec<Id>)>, CdvcsError> {
        let Some((_, id)) = self.heap.pop() else {
            return Ok(None);
        };
        let slot = self.paint.entry(id).or_insert(0);
        *slot &= !QUEUED;
        let flags = *slot;
        if (self.interesting)(flags) {
            self.pending -= 1;
        }
        let parents = (self.graph.lookup(&id).map_err(source_err(id))?)
            .ok_or(CdvcsError::UnknownCommit { id })?
            .parents;
        Ok(Some((id, flags, parents)))
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
                p.add(*id, flag)?;
            }
        }
        let mut found: Vec<Id> = Vec::new();
        while p.pending > 0 {
            let Some((id, mut flags, parents)) = p.pop()? else {
                break;
            };
            if flags & (A | B | STALE) == A | B {
                found.push(id);
                flags |= STALE;
            }
            for parent in parents {
                p.add(parent, flags & (A | B | STALE))?;
            }
        }
        // Found in decreasing generation; the stale paint already excludes ancestors of an
        // earlier find, the check below keeps the result exact whatever the walk order.
        let mut lcas = BTreeSet::new();
        for x in &found {
            let mut below = false;
            for y in found.iter().filter(|y| *y != x) {
                below = below || self.reaches(y, x)?;
            }
            if !below {
                lcas.insert(*x);
            }
        }
        Ok(lcas)
    }

    /// The commits reachable from `ours` (each included) and not from any of `their_known`,
    /// ordered by `(generation, id)`: parents before children, deterministic across replicas.
    /// Ids in `their_known` this state lacks are ignored; an unknown id in `ours` is an error.
    /// Visits the result plus the part of their side's ancestry down to the lowest result
    /// generation, O((result + frontier) · log), not O(graph).
    pub fn commits_between(&self, their_known: &[Id], ours: &[Id]) -> Result<Vec<Id>, CdvcsError> {
        let mut p = Painter::new(&self.graph, |f| f & A != 0 && f & B == 0);
        for id in ours {
            p.add(*id, A)?;
        }
        for id in their_known {
            if self.try_contains(id)? {
                p.add(*id, B)?;
            }
        }
        let mut out: Vec<(u64, Id)> = Vec::new();
        while p.pending > 0 {
            let Some((id, flags, parents)) = p.pop()? else {
                break;
            };
            if flags & A != 0 && flags & B == 0 {
                let generation = (self.graph.generation_of(&id).map_err(source_err(id))?)
                    .ok_or(CdvcsError::UnknownCommit { id })?;
                out.push((generation, id));
            }
            for parent in parents {
                p.add(parent, flags & (A | B))?;
            }
        }
        out.sort();
        Ok(out.into_iter().map(|(_, id)| id).collect())
    }
}
