//! What the session needs to know about local state: [`GraphView`] per CRDT and [`Graphs`]
//! for all of them. The node implements these over the real CDVCS; tests use a small DAG.

use std::collections::HashSet;

use crate::crdt::Cdvcs;
use crate::crdt::commit::{Commit, CrdtKey};
use crate::id::Id;
use crate::identity::PublicKey;

/// A read-only view of one CRDT's commit graph, as durable in the local store.
pub trait GraphView {
    /// Whether the commit `id` is in the graph (and so are all its ancestors).
    fn contains(&self, id: &Id) -> bool;

    /// The current heads.
    fn heads(&self) -> Vec<Id>;

    /// Commits reachable from `ours` and not from any of `their_known`, parents before
    /// children. Ids of `their_known` that are not in the graph are ignored.
    fn commits_between(&self, their_known: &[Id], ours: &[Id]) -> Vec<Id>;

    /// At most `max` commit ids reachable from `from` (inclusive) and not from `exclude`, at
    /// exponentially growing distances back from `from` (0, 1, 2, 4, 8, …), ending with the
    /// oldest such commit. Used for have/want negotiation;
    /// [`ancestry::ancestry_sample`](super::ancestry::ancestry_sample) implements it.
    fn ancestry_sample(&self, from: &[Id], exclude: &[Id], max: usize) -> Vec<Id>;
}

/// All local CRDT graphs plus the persisted per-peer hints.
pub trait Graphs {
    /// The graph of `crdt`, or `None` if there is no local replica yet.
    fn graph(&self, crdt: &CrdtKey) -> Option<&dyn GraphView>;

    /// Heads that `peer` was known to hold in an earlier session (saved from
    /// [`Effect::SaveKnownHeads`](super::Effect::SaveKnownHeads)). Only a hint: the session
    /// checks them against the graph and asks the peer before relying on them.
    fn known_heads_hint(&self, peer: &PublicKey, crdt: &CrdtKey) -> Vec<Id> {
        let _ = (peer, crdt);
        Vec::new()
    }
}

/// A CDVCS as the session sees it: in memory, or backed by the store it reads through.
impl GraphView for Cdvcs {
    fn contains(&self, id: &Id) -> bool {
        Cdvcs::contains(self, id)
    }

    fn heads(&self) -> Vec<Id> {
        Cdvcs::heads(self).iter().copied().collect()
    }

    fn commits_between(&self, their_known: &[Id], ours: &[Id]) -> Vec<Id> {
        let held = |ids: &[Id]| -> Vec<Id> {
            ids.iter()
                .filter(|id| Cdvcs::contains(self, id))
                .copied()
                .collect()
        };
        Cdvcs::commits_between(self, &held(their_known), &held(ours)).unwrap_or_default()
    }

    fn ancestry_sample(&self, from: &[Id], exclude: &[Id], max: usize) -> Vec<Id> {
        let node = |id: &Id| {
            Some(super::ancestry::Node {
                parents: self.parents(id)?,
                height: self.generation(id)?,
            })
        };
        super::ancestry::ancestry_sample(&node, from, exclude, max)
    }
}

/// The graph of a replica that does not exist yet: it will be created empty, i.e. holding
/// only the deterministic root (DESIGN §5).
pub(crate) struct RootOnly(pub Id);

impl RootOnly {
    pub(crate) fn of(crdt: &CrdtKey) -> RootOnly {
        RootOnly(Commit::root(crdt).id)
    }
}

impl GraphView for RootOnly {
    fn contains(&self, id: &Id) -> bool {
        *id == self.0
    }
    fn heads(&self) -> Vec<Id> {
        vec![self.0]
    }
    fn commits_between(&self, their_known: &[Id], ours: &[Id]) -> Vec<Id> {
        let wanted = ours.contains(&self.0) && !their_known.contains(&self.0);
        if wanted { vec![self.0] } else { Vec::new() }
    }
    fn ancestry_sample(&self, from: &[Id], exclude: &[Id], _max: usize) -> Vec<Id> {
        let wanted = from.contains(&self.0) && !exclude.contains(&self.0);
        if wanted { vec![self.0] } else { Vec::new() }
    }
}

/// A graph plus the commits handed to the store in `Apply` effects but not yet confirmed by
/// [`on_applied`](super::SyncSession::on_applied): they count as present for parent checks
/// and `Known` answers.
pub(crate) struct Overlay<'a> {
    pub graph: &'a dyn GraphView,
    pub inflight: &'a HashSet<Id>,
}

impl Overlay<'_> {
    pub(crate) fn contains(&self, id: &Id) -> bool {
        self.inflight.contains(id) || self.graph.contains(id)
    }
}

/// Runs `f` on the graph of `crdt`, or on the root-only graph of a replica not created yet.
pub(crate) fn with_graph<T>(
    crdt: &CrdtKey,
    graphs: &dyn Graphs,
    f: impl FnOnce(&dyn GraphView) -> T,
) -> T {
    match graphs.graph(crdt) {
        Some(g) => f(g),
        None => f(&RootOnly::of(crdt)),
    }
}
