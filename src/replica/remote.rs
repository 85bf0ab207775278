//! Commits that arrive from peers, verified, made durable before anyone sees them.

use std::collections::HashSet;

use actix::prelude::*;

use super::{ReplicaActor, ReplicaError};
use crate::crdt::{CdvcsError, CdvcsOp, EncodedCommit};
use crate::id::Id;

/// Apply verified remote commits (re-hashed by the sync layer) with the values they carried.
/// Every referenced param value must be in `values` or already in the store, and every parent
/// in the batch or the graph; otherwise nothing of the batch is stored or applied.
#[derive(Message)]
#[rtype(result = "Result<Vec<Id>, ReplicaError>")]
pub struct ApplyRemote {
    /// Commits, parents before children.
    pub commits: Vec<EncodedCommit>,
    /// Values `(id, bytes)` already re-hashed.
    pub values: Vec<(Id, Vec<u8>)>,
    /// The connection it came from.
    pub origin: Option<u64>,
}

impl Handler<ApplyRemote> for ReplicaActor {
    type Result = AtomicResponse<Self, Result<Vec<Id>, ReplicaError>>;

    fn handle(&mut self, msg: ApplyRemote, _ctx: &mut Context<Self>) -> Self::Result {
        let key = self.key().clone();
        let ready = |r| AtomicResponse::new(Box::pin(fut::ready(r)));
        let state = self.shared.state();
        let guard = match state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let fresh: Vec<&EncodedCommit> = msg
            .commits
            .iter()
            .filter(|c| !guard.contains(&c.id))
            .collect();
        if fresh.is_empty() {
            return ready(Ok(Vec::new()));
        }
        let supplied: HashSet<Id> = msg.values.iter().map(|(id, _)| *id).collect();
        for c in &fresh {
            for tx in &c.commit.transactions {
                if supplied.contains(&tx.params) {
                    continue;
                }
                // The root's param is the CDVCS id's hash, not a stored value.
                if c.commit.parents.is_empty() {
                    continue;
                }
                match self.store.store().has_value(&tx.params) {
                    Ok(true) => {}
                    Ok(false) => {
                        return ready(Err(ReplicaError::MissingValue {
                            key,
                            commit: c.id,
                            value: tx.params,
                        }));
                    }
                    Err(source) => {
                        return ready(Err(ReplicaError::Store {
                            key,
                            source: Box::new(source),
                        }));
                    }
                }
            }
        }
        let op = CdvcsOp {
            graph: fresh
                .iter()
                .map(|c| (c.id, c.commit.parents.clone()))
                .collect(),
            heads: Vec::new(),
        };
        let missing = guard.missing(&op);
        if let Some(first) = missing.first() {
            return ready(Err(ReplicaError::Cdvcs {
                key,
                source: CdvcsError::MissingParents {
                    commit: fresh[0].id,
                    missing: vec![*first],
                },
            }));
        }
        let heads = guard.heads_after(&op);
        drop(guard);
        let fresh: Vec<EncodedCommit> = fresh.into_iter().cloned().collect();
        let mut batch = self.batch_for(&fresh, &heads);
        // The write transaction leaves ids already stored alone: no read per value here.
        for (_id, bytes) in msg.values {
            batch.put_value(bytes);
        }
        let op = CdvcsOp {
            graph: op.graph,
            heads,
        };
        AtomicResponse::new(self.persist_then_apply(batch, op, msg.origin))
    }
}
