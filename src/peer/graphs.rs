//! The sync session's view of this node: every replica's CDVCS as a [`GraphView`], and the
//! persisted per-peer hints. Read locks are held only for the duration of one session call.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::crdt::{Cdvcs, CrdtKey};
use crate::id::Id;
use crate::store::Store;
use crate::sync::ancestry::{self, Node};
use crate::sync::{GraphView, Graphs};

/// A CDVCS as the session sees it.
pub struct CdvcsView<'a>(pub &'a Cdvcs);

impl CdvcsView<'_> {
    fn node(&self, id: &Id) -> Option<Node> {
        Some(Node {
            parents: self.0.parents(id)?,
            height: self.0.generation(id)?,
        })
    }
}

impl GraphView for CdvcsView<'_> {
    fn contains(&self, id: &Id) -> bool {
        self.0.contains(id)
    }

    fn heads(&self) -> Vec<Id> {
        self.0.heads().iter().copied().collect()
    }

    fn commits_between(&self, their_known: &[Id], ours: &[Id]) -> Vec<Id> {
        let known: Vec<Id> = their_known
            .iter()
            .filter(|id| self.0.contains(id))
            .copied()
            .collect();
        let ours: Vec<Id> = ours
            .iter()
            .filter(|id| self.0.contains(id))
            .copied()
            .collect();
        self.0.commits_between(&known, &ours).unwrap_or_default()
    }

    fn ancestry_sample(&self, from: &[Id], exclude: &[Id], max: usize) -> Vec<Id> {
        ancestry::ancestry_sample(&|id| self.node(id), from, exclude, max)
    }
}

/// Every replica's graph, locked for reading, plus the store for hints.
pub struct NodeGraphs<'a> {
    views: HashMap<CrdtKey, CdvcsView<'a>>,
    store: &'a Store,
}

impl Graphs for NodeGraphs<'_> {
    fn graph(&self, crdt: &CrdtKey) -> Option<&dyn GraphView> {
        self.views.get(crdt).map(|v| v as &dyn GraphView)
    }

    fn known_heads_hint(&self, peer: &crate::identity::PublicKey, crdt: &CrdtKey) -> Vec<Id> {
        crate::store::cdvcs::peer_heads_hint(self.store, peer, crdt)
    }
}

/// Runs `f` with read views of `states` (taken from the replica registry).
pub fn with_graphs<R>(
    states: &[(CrdtKey, Arc<RwLock<Cdvcs>>)],
    store: &Store,
    f: impl FnOnce(&dyn Graphs) -> R,
) -> R {
    let guards: Vec<(CrdtKey, RwLockReadGuard<'_, Cdvcs>)> = states
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                match s.read() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                },
            )
        })
        .collect();
    let views = guards
        .iter()
        .map(|(k, g)| (k.clone(), CdvcsView(g)))
        .collect();
    f(&NodeGraphs { views, store })
}
