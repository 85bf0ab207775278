//! How far behind the peer is, as the session knows it: per shared CRDT, the commits we hold
//! that we have neither sent to the peer nor learned that it holds (its bounded frontier
//! against our heads). For operators (`replikativ_sync_lag_commits`); pure.

use std::collections::BTreeMap;

use super::Graphs;
use super::graph::with_graph;
use super::session::SyncSession;
use crate::crdt::CrdtKey;

impl SyncSession {
    /// The lag of each shared CRDT among `crdts` (others are left out).
    pub fn lag(&self, crdts: &[CrdtKey], graphs: &dyn Graphs) -> BTreeMap<CrdtKey, u64> {
        crdts
            .iter()
            .filter_map(|crdt| {
                let state = self.shared.get(crdt)?;
                let frontier: Vec<_> = state.frontier.iter().copied().collect();
                let behind = with_graph(crdt, graphs, |g| {
                    g.commits_between(&frontier, &g.heads()).len()
                });
                Some((crdt.clone(), behind as u64))
            })
            .collect()
    }
}
