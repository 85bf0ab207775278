//! The sync session's view of this node: every replica's CDVCS as a [`GraphView`] (the core
//! implements it for [`Cdvcs`]), and the persisted per-peer hints. Read locks are held only for the duration of one session call.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::crdt::{Cdvcs, CrdtKey};
use crate::id::Id;
use crate::store::Store;
use crate::sync::{GraphView, Graphs};

/// Every replica's graph, locked for reading, plus the store for hints.
pub struct NodeGraphs<'a> {
    views: HashMap<CrdtKey, &'a Cdvcs>,
    store: &'a Store,
}

impl Graphs for NodeGraphs<'_> {
    fn graph(&self, crdt: &CrdtKey) -> Option<&dyn GraphView> {
        self.views.get(crdt).map(|v| *v as &dyn GraphView)
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
    let views = guards.iter().map(|(k, g)| (k.clone(), &**g)).collect();
    f(&NodeGraphs { views, store })
}
