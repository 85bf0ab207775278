//! CDVCS: a content-addressed commit graph with heads (DESIGN §5).
//!
//! State = commit graph (id → ordered parents) + heads. The join (`downstream`) is the union of
//! the graphs; heads are the union of both head sets minus every head that has a child in the
//! union graph. In any state built by these operations every commit is an ancestor-or-self of
//! a head, so "has a child" is exactly "is an ancestor of another head", and it is decided in
//! O(1) per head from a marker kept per commit: applying k new commits costs O(k · parents +
//! heads), independent of the graph's size.
//!
//! A state is either whole in memory ([`Cdvcs::restore`], [`Cdvcs::new`]) or backed by a
//! [`GraphSource`] ([`Cdvcs::backed`]): then it holds its heads and the commits applied lately
//! in memory and looks every other commit up by id (each answers its generation, so walks stay
//! bounded by generation): opening one costs O(heads), not O(history).
//!
//! The parts live beside this file: `graph` (commits by id with generation numbers),
//! `upstream` (commit, merge, pull), `history` (linear order, ancestry), `paint`
//! (LCA and the commits between two frontiers), `delta` (helpers for replication).

mod delta;
mod error;
mod graph;
mod history;
mod paint;
mod upstream;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::crdt::commit::{Commit, CrdtKey, EncodedCommit};
use crate::id::Id;

pub use error::CdvcsError;
use graph::{FastMap, Graph, InsertError};
pub use graph::{GraphEntry, GraphSource, SourceError};

/// A backed state forgets the commits it applied (durable in its source) beyond this many.
const IN_MEMORY: usize = 4096;

fn source_err(id: Id) -> impl Fn(SourceError) -> CdvcsError {
    move |e| CdvcsError::Source { id, detail: e.0 }
}

/// A CDVCS replica's state: the commit graph and its heads. Pure: no I/O; commit records and
/// transaction params are values stored elsewhere under their ids.
#[derive(Clone, Default)]
pub struct Cdvcs {
    graph: Graph,
    heads: BTreeSet<Id>,
}

/// What one replica tells the others: new graph entries (parents before children, though
/// receivers accept any order) and the sender's heads after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdvcsOp {
    /// New commits with their parents in order.
    pub graph: Vec<(Id, Vec<Id>)>,
    /// The sender's heads.
    pub heads: Vec<Id>,
}

impl Cdvcs {
    /// A new CDVCS for `key`: graph `{root: []}`, heads `{root}`. The root is deterministic
    /// (it depends on `key` only); store the returned record as a value.
    pub fn new(key: &CrdtKey) -> (Cdvcs, EncodedCommit) {
        let root = Commit::root(key);
        let mut state = Cdvcs::default();
        // One parentless commit into an empty unbacked graph cannot fail.
        let _ = state.graph.insert(root.id, &[]);
        state.heads.insert(root.id);
        (state, root)
    }

    /// An empty replica (subscribed, not yet synced): no commits, no heads.
    pub fn empty() -> Cdvcs {
        Cdvcs::default()
    }

    /// Rebuilds a state from persisted graph entries given in any order and its heads.
    ///
    /// Refuses, naming the culprit: a parent absent from `entries` (`MissingParents`), a head
    /// absent from the graph (`UnknownHead`) or with a child (`HeadHasChild`), one id with two
    /// parent lists (`ParentsMismatch`), a cycle (`Cycle`). Commits without children that are
    /// not listed in `heads` are kept (the persisted heads are authoritative); empty `heads`
    /// with a non-empty graph takes every commit without children as a head. O(n · parents).
    pub fn restore(
        entries: impl IntoIterator<Item = (Id, Vec<Id>)>,
        heads: Vec<Id>,
    ) -> Result<Cdvcs, CdvcsError> {
        let mut state = Cdvcs::default();
        let entries: Vec<(Id, Vec<Id>)> = entries.into_iter().collect();
        state.graph.reserve(entries.len());
        state.apply_entries(&entries, &heads, false)?;
        for h in &heads {
            if state.graph.node(h).is_some_and(|n| n.has_child) {
                return Err(CdvcsError::HeadHasChild { head: *h });
            }
        }
        state.heads = if heads.is_empty() {
            let g = &state.graph;
            let childless = (g.ids().iter()).filter(|id| g.node(id).is_some_and(|n| !n.has_child));
            childless.copied().collect()
        } else {
            heads.into_iter().collect()
        };
        Ok(state)
    }

    /// A state backed by `source` with the persisted `heads` (each looked up once): the other
    /// commits stay in the source and are looked up by id when a walk reaches them. The
    /// source must hold every ancestor of the heads, each an ancestor-or-self of one of them.
    /// Refused when a head is not in the source (`UnknownHead`) or the source fails.
    /// O(heads).
    pub fn backed(
        source: std::sync::Arc<dyn GraphSource>,
        heads: Vec<Id>,
    ) -> Result<Cdvcs, CdvcsError> {
        let mut state = Cdvcs {
            graph: Graph::backed(source),
            heads: BTreeSet::new(),
        };
        for h in heads {
            let entry = (state.graph.lookup(&h).map_err(source_err(h))?)
                .ok_or(CdvcsError::UnknownHead { head: h })?;
            state.graph.insert_loaded(h, entry);
            state.heads.insert(h);
        }
        Ok(state)
    }

    /// Whether commits are looked up in a source (see [`backed`](Self::backed)): then
    /// [`len`](Self::len), [`entries`](Self::entries) and [`to_op`](Self::to_op) cover the
    /// commits held in memory only.
    pub fn is_backed(&self) -> bool {
        self.graph.is_backed()
    }

    /// The heads, sorted by id. Several heads mean concurrent commits (a conflict).
    pub fn heads(&self) -> &BTreeSet<Id> {
        &self.heads
    }

    /// Whether `id` is a commit of the graph (false when a backing source fails).
    pub fn contains(&self, id: &Id) -> bool {
        self.graph.contains(id).unwrap_or(false)
    }

    /// Whether `id` is a commit of the graph, a failing source reported.
    pub fn try_contains(&self, id: &Id) -> Result<bool, CdvcsError> {
        self.graph.contains(id).map_err(source_err(*id))
    }

    /// The parents of `id` in their order, or `None` when `id` is not in the graph.
    pub fn parents(&self, id: &Id) -> Option<Vec<Id>> {
        self.graph.get(id).map(|e| e.parents)
    }

    /// Number of commits (in memory, for a [backed](Self::backed) state).
    pub fn len(&self) -> usize {
        self.graph.len()
    }

    /// Whether the graph has no commits (an empty replica): every non-empty one has a head.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty() && self.graph.len() == 0
    }

    /// `1 + max(parent generations)`, 1 for a root; a strict ancestor has a smaller one.
    pub fn generation(&self, id: &Id) -> Option<u64> {
        self.graph.generation_of(id).ok().flatten()
    }

    /// Every graph entry, parents before children (the insertion order of this replica; for
    /// a [backed](Self::backed) state, the commits in memory only).
    pub fn entries(&self) -> impl Iterator<Item = (Id, Vec<Id>)> + '_ {
        let g = &self.graph;
        (g.ids().iter()).filter_map(|id| g.node(id).map(|n| (*id, n.parents.to_vec())))
    }

    /// The whole state as one op (full graph, parents before children, and heads): applying
    /// it to another replica joins the two states.
    pub fn to_op(&self) -> CdvcsOp {
        CdvcsOp {
            graph: self.entries().collect(),
            heads: self.heads.iter().copied().collect(),
        }
    }

    /// Applies an op from any replica (the join). Returns the ids newly added, parents before
    /// children. Refused with the state unchanged when an entry references a parent neither in
    /// the op nor in the state (`MissingParents`), a head is unknown (`UnknownHead`), a known
    /// commit arrives with other parents (`ParentsMismatch`) or entries form a cycle.
    /// Idempotent, commutative and associative. Costs O(k · parents + heads) for k entries.
    pub fn downstream(&mut self, op: &CdvcsOp) -> Result<Vec<Id>, CdvcsError> {
        self.join(op, false)
    }

    /// [`downstream`](Self::downstream) of an op whose entries the caller found absent
    /// (`contains` false) and then wrote to this state's source: they are new here whatever
    /// the source answers, so none is walked to from the heads (a backed state otherwise
    /// walks down to a written entry's generation to tell it from an applied one).
    pub fn downstream_written(&mut self, op: &CdvcsOp) -> Result<Vec<Id>, CdvcsError> {
        self.join(op, true)
    }

    fn join(&mut self, op: &CdvcsOp, written: bool) -> Result<Vec<Id>, CdvcsError> {
        let added = self.apply_entries(&op.graph, &op.heads, written)?;
        let graph = &self.graph;
        let old = std::mem::take(&mut self.heads);
        let mut heads = old.clone();
        heads.extend(op.heads.iter().copied());
        // apply_entries found every head held; a source failing now drops none.
        heads.retain(|h| graph.contains(h).unwrap_or(true) && !graph.has_child(h, &old));
        self.heads = heads;
        self.graph.trim(IN_MEMORY, &self.heads);
        Ok(added)
    }

    /// Validates `entries` and `heads` against the state, then inserts the new entries in a
    /// parents-first order. Nothing changes when it returns an error.
    fn apply_entries(
        &mut self,
        entries: &[(Id, Vec<Id>)],
        heads: &[Id],
        written: bool,
    ) -> Result<Vec<Id>, CdvcsError> {
        let mut fresh = Fresh::default();
        // Ops normally list parents first; then the given order is used as is.
        let mut in_order = true;
        for (id, parents) in entries {
            let known = match self.applied_entry(id, parents, written)? {
                Some(e) if e.parents == *parents => continue,
                Some(e) => e.parents,
                None => match fresh.get(id) {
                    Some(ps) if ps == parents.as_slice() => continue,
                    Some(ps) => ps.to_vec(),
                    None => {
                        for p in parents {
                            in_order =
                                in_order && (fresh.get(p).is_some() || self.try_contains(p)?);
                        }
                        fresh.insert(*id, parents);
                        continue;
                    }
                },
            };
            return Err(CdvcsError::ParentsMismatch {
                commit: *id,
                known,
                given: parents.clone(),
            });
        }
        for h in heads {
            if fresh.get(h).is_none() && !self.try_contains(h)? {
                return Err(CdvcsError::UnknownHead { head: *h });
            }
        }
        let order = if in_order {
            fresh.ids()
        } else {
            topo_order(&self.graph, entries, &fresh)?
        };
        // Every parent outside the entries looked up before the first insert: a source
        // failing later cannot leave the state half-changed.
        for id in &order {
            for p in fresh.get(id).unwrap_or_default() {
                if fresh.get(p).is_none() && !self.try_contains(p)? {
                    return Err(CdvcsError::MissingParents {
                        commit: *id,
                        missing: vec![*p],
                    });
                }
            }
        }
        self.graph.reserve(order.len());
        for id in &order {
            let parents = fresh.get(id).unwrap_or_default();
            self.graph.insert(*id, parents).map_err(|e| match e {
                // Every parent was found above (held, or placed first).
                InsertError::MissingParent(p) => CdvcsError::MissingParents {
                    commit: *id,
                    missing: vec![p],
                },
                InsertError::Source(p, e) => source_err(p)(e),
            })?;
        }
        Ok(order)
    }
}

/// The entries of an op that the state lacks, first occurrence wins. A linear list for the
/// usual few entries (a commit op has one), indexed by a map once it grows.
#[derive(Default)]
struct Fresh<'a> {
    list: Vec<(Id, &'a [Id])>,
    index: Option<FastMap<Id, usize>>,
}

impl<'a> Fresh<'a> {
    const LINEAR: usize = 8;

    fn get(&self, id: &Id) -> Option<&'a [Id]> {
        let pos = match &self.index {
            Some(map) => map.get(id).copied(),
            None => self.list.iter().position(|(i, _)| i == id),
        };
        pos.map(|k| self.list[k].1)
    }

    fn contains_key(&self, id: &Id) -> bool {
        self.get(id).is_some()
    }

    fn insert(&mut self, id: Id, parents: &'a [Id]) {
        self.list.push((id, parents));
        if let Some(map) = &mut self.index {
            map.insert(id, self.list.len() - 1);
        } else if self.list.len() > Self::LINEAR {
            let map = self.list.iter().enumerate().map(|(k, (i, _))| (*i, k));
            self.index = Some(map.collect());
        }
    }

    fn len(&self) -> usize {
        self.list.len()
    }

    fn ids(&self) -> Vec<Id> {
        self.list.iter().map(|(i, _)| *i).collect()
    }
}

/// Orders the `fresh` entries so every parent comes before its children (iterative DFS, in
/// the order the entries were given). Pure: fails on a parent that is nowhere or on a cycle.
fn topo_order(
    graph: &Graph,
    entries: &[(Id, Vec<Id>)],
    fresh: &Fresh<'_>,
) -> Result<Vec<Id>, CdvcsError> {
    const ON_STACK: u8 = 1;
    const PLACED: u8 = 2;
    let mut mark: FastMap<Id, u8> = FastMap::default();
    let mut order = Vec::with_capacity(fresh.len());
    let mut stack: Vec<(Id, usize)> = Vec::new();
    for (start, _) in entries {
        if !fresh.contains_key(start) || mark.contains_key(start) {
            continue;
        }
        mark.insert(*start, ON_STACK);
        stack.push((*start, 0));
        while let Some((cur, next)) = stack.last_mut() {
            let cur = *cur;
            let parents = fresh.get(&cur).unwrap_or_default();
            let Some(p) = parents.get(*next) else {
                mark.insert(cur, PLACED);
                order.push(cur);
                stack.pop();
                continue;
            };
            *next += 1;
            if graph.contains(p).map_err(source_err(*p))? {
                continue;
            }
            match mark.get(p) {
                Some(&PLACED) => {}
                Some(_) => {
                    let mut commits: Vec<Id> = stack.iter().map(|(id, _)| *id).collect();
                    commits.sort();
                    return Err(CdvcsError::Cycle { commits });
                }
                None if fresh.contains_key(p) => {
                    mark.insert(*p, ON_STACK);
                    stack.push((*p, 0));
                }
                None => {
                    let missing = parents
                        .iter()
                        .filter(|q| !graph.contains(q).unwrap_or(false) && !fresh.contains_key(q))
                        .copied()
                        .collect();
                    return Err(CdvcsError::MissingParents {
                        commit: cur,
                        missing,
                    });
                }
            }
        }
    }
    Ok(order)
}

impl PartialEq for Cdvcs {
    /// Equal when both hold the same commits with the same parents and the same heads,
    /// whatever order the commits arrived in.
    fn eq(&self, other: &Cdvcs) -> bool {
        self.heads == other.heads
            && self.graph.len() == other.graph.len()
            && self.entries().all(|(id, ps)| {
                (other.graph.node(&id)).is_some_and(|n| *n.parents == *ps.as_slice())
            })
    }
}

impl Eq for Cdvcs {}

impl fmt::Debug for Cdvcs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cdvcs")
            .field("commits", &self.graph.len())
            .field("heads", &self.heads)
            .finish()
    }
}
