//! Commits that arrive from peers, verified, made durable before anyone sees them.

use actix::prelude::*;

use super::{ReplicaActor, ReplicaError};
use crate::crdt::{CdvcsError, CdvcsOp, EncodedCommit};
use crate::id::{Id, Verified};

/// Apply verified remote commits (hashed once on receipt) with the values they carried.
/// Every param value not carried (`values_to_check`) must already be in the store, and every
/// parent in the batch or the graph; otherwise nothing of the batch is stored or applied.
#[derive(Message)]
#[rtype(result = "Result<Vec<Id>, ReplicaError>")]
pub struct ApplyRemote {
    /// Commits, parents before children.
    pub commits: Vec<EncodedCommit>,
    /// Values verified on receipt (not hashed again).
    pub values: Vec<Verified>,
    /// Packs of values verified on receipt, stored as received (not compressed again).
    pub packs: Vec<crate::pack::VerifiedPack>,
    /// Params referenced by the commits (those with parents) and not carried in `values`,
    /// as the sync layer listed them: [`VerifiedBatch::values_to_check`](crate::sync::VerifiedBatch).
    pub values_to_check: Vec<Id>,
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
        // The sync layer listed the params not carried once; only those need the store.
        for value in &msg.values_to_check {
            match self.store.store().has_value(value) {
                Ok(true) => {}
                Ok(false) => {
                    let commit = fresh
                        .iter()
                        .find(|c| c.commit.transactions.iter().any(|t| t.params == *value))
                        .map_or(fresh[0].id, |c| c.id);
                    return ready(Err(ReplicaError::MissingValue {
                        key,
                        commit,
                        value: *value,
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
        // Nothing of a batch with a forged, stripped or unauthorised commit is stored.
        let records = match self.check_authors(&fresh) {
            Ok(records) => records,
            Err(e) => return ready(Err(e)),
        };
        let mut batch = self.batch_for(&fresh, &heads);
        batch.merge(records);
        // The write transaction leaves ids already stored alone: no read per value here.
        for value in msg.values {
            batch.put_verified_value(value);
        }
        for pack in msg.packs {
            batch.put_pack(pack);
        }
        let op = CdvcsOp {
            graph: op.graph,
            heads,
        };
        AtomicResponse::new(self.persist_then_apply(batch, op, msg.origin))
    }
}
