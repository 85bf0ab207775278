//! The linear history realizers follow, and ancestry tests bounded by generation numbers.
//!
//! All walks are iterative (explicit stacks), so a chain of millions of commits cannot
//! overflow the call stack.

use std::collections::HashSet;
use std::hash::BuildHasher;

use crate::id::Id;

use super::graph::{FastMap, Graph, GraphEntry};
use super::{Cdvcs, CdvcsError, source_err};

/// Post-order depth-first walk from `head`, parents in their order, each commit once;
/// `fresh(id)` marks a commit and says whether the walk may enter it.
fn walk(
    graph: &Graph,
    head: Id,
    mut fresh: impl FnMut(&Id) -> bool,
) -> Result<Vec<Id>, CdvcsError> {
    let mut out = Vec::new();
    if !fresh(&head) {
        return Ok(out);
    }
    let parents = |id: &Id| -> Result<Vec<Id>, CdvcsError> {
        let entry = graph.lookup(id).map_err(source_err(*id))?;
        Ok(entry.ok_or(CdvcsError::UnknownCommit { id: *id })?.parents)
    };
    let mut stack: Vec<(Id, Vec<Id>, usize)> = vec![(head, parents(&head)?, 0)];
    while let Some((cur, ps, next)) = stack.last_mut() {
        match ps.get(*next) {
            Some(&p) => {
                *next += 1;
                if fresh(&p) {
                    let pp = parents(&p)?;
                    stack.push((p, pp, 0));
                }
            }
            None => {
                out.push(*cur);
                stack.pop();
            }
        }
    }
    Ok(out)
}

impl Cdvcs {
    /// The deterministic linear order of `head`'s ancestry (DESIGN §5): depth-first, parents
    /// in their order, each commit once, every commit after all its parents, ending in `head`.
    /// O(ancestors of head).
    pub fn history(&self, head: &Id) -> Result<Vec<Id>, CdvcsError> {
        if !self.try_contains(head)? {
            return Err(CdvcsError::UnknownCommit { id: *head });
        }
        let mut seen: FastMap<Id, ()> = FastMap::default();
        walk(&self.graph, *head, |id| seen.insert(*id, ()).is_none())
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
        if !self.try_contains(head)? {
            return Err(CdvcsError::UnknownCommit { id: *head });
        }
        let mut seen: FastMap<Id, ()> = FastMap::default();
        walk(&self.graph, *head, |id| {
            !applied.contains(id) && seen.insert(*id, ()).is_none()
        })
    }

    /// Whether `a` is `b` or an ancestor of `b`; false when either is unknown (or a backing
    /// source fails). Only commits with a generation between theirs are visited.
    pub fn is_ancestor(&self, a: &Id, b: &Id) -> bool {
        self.contains(a) && self.contains(b) && self.reaches(b, a).unwrap_or(false)
    }

    /// The entry of `id` when this state has applied it: in memory, or in the source and an
    /// ancestor-or-self of a head. The source also answers commits made durable but not yet
    /// applied (a replica writes before it applies); those are new here. A commit with a
    /// higher generation than every head is new at once; otherwise the heads are walked
    /// down to its generation only (`written`: the caller wrote it, it is new without a
    /// walk). A source entry with other parents is answered as is (refused as a mismatch).
    pub(super) fn applied_entry(
        &self,
        id: &Id,
        given: &[Id],
        written: bool,
    ) -> Result<Option<GraphEntry>, CdvcsError> {
        if let Some(n) = self.graph.node(id) {
            return Ok(Some(GraphEntry {
                parents: n.parents.to_vec(),
                generation: n.generation,
            }));
        }
        let Some(entry) = self.graph.lookup(id).map_err(source_err(*id))? else {
            return Ok(None);
        };
        if entry.parents != given {
            return Ok(Some(entry));
        }
        if written {
            return Ok(None);
        }
        for h in &self.heads {
            let above = (self.graph.generation_of(h).map_err(source_err(*h))?)
                .is_some_and(|g| g > entry.generation);
            if above && self.reaches(h, id)? {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Whether `to` (held) is `from` (held) or one of its ancestors.
    pub(super) fn reaches(&self, from: &Id, to: &Id) -> Result<bool, CdvcsError> {
        let g = &self.graph;
        let floor = (g.generation_of(to).map_err(source_err(*to))?)
            .ok_or(CdvcsError::UnknownCommit { id: *to })?;
        let mut visited: FastMap<Id, ()> = FastMap::default();
        let mut stack = vec![*from];
        while let Some(cur) = stack.pop() {
            if cur == *to {
                return Ok(true);
            }
            let Some(entry) = g.lookup(&cur).map_err(source_err(cur))? else {
                continue;
            };
            for p in entry.parents {
                if p == *to {
                    return Ok(true);
                }
                // A strict ancestor has a smaller generation: nothing at or below `to`'s
                // generation other than `to` itself can lead to it.
                let above =
                    (g.generation_of(&p).map_err(source_err(p))?).is_some_and(|x| x > floor);
                if above && visited.insert(p, ()).is_none() {
                    stack.push(p);
                }
            }
        }
        Ok(false)
    }
}
