//! Commits made on this node: transact (plain, merge-first, at most once per record), the
//! deterministic join of concurrent heads, and merges with correcting transactions.

use std::collections::HashSet;

use actix::prelude::*;

use super::{ReplicaActor, ReplicaError, now_ms};
use crate::crdt::{Cdvcs, CdvcsError, CdvcsOp, EncodedCommit, Transaction};
use crate::id::Id;
use crate::store::{WriteBatch, keys};

/// What a local commit does when the CDVCS has several heads (concurrent writes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WritePolicy {
    /// Refuse with [`CdvcsError::MultipleHeads`]: the caller merges explicitly.
    #[default]
    Refuse,
    /// A writer's policy (DESIGN §12): join the heads with their deterministic merge, then
    /// commit on top of it, both in the same atomic batch. Right for commutative ops (adding
    /// tweets, op logs); a relay never writes, so it never merges.
    MergeFirst,
}

/// Commit local transactions (params as encoded value bytes) onto the single head, with
/// `extra` state (e.g. a source checkpoint) in the same atomic batch. Answers the commit id.
#[derive(Message)]
#[rtype(result = "Result<Id, ReplicaError>")]
pub struct Transact {
    /// `(op name, params value bytes)` in order.
    pub txs: Vec<(String, Vec<u8>)>,
    /// State written in the same atomic batch.
    pub extra: WriteBatch,
    /// What to do with several heads.
    pub policy: WritePolicy,
}

impl Handler<Transact> for ReplicaActor {
    type Result = AtomicResponse<Self, Result<Id, ReplicaError>>;

    fn handle(&mut self, msg: Transact, _ctx: &mut Context<Self>) -> Self::Result {
        let (author, policy) = (self.author.clone(), msg.policy);
        AtomicResponse::new(self.local_commit(msg.txs, msg.extra, move |state, txs| {
            prepare_local(state, &author, policy, txs)
        }))
    }
}

/// One transaction of a [`TransactOnce`], with the record id that makes it unique.
#[derive(Clone, Debug)]
pub struct RecordTx {
    /// The record's id (e.g. a tweet id): committed at most once into this CDVCS by this node.
    pub record: String,
    /// The op name.
    pub op: String,
    /// The params value bytes.
    pub params: Vec<u8>,
}

/// What a [`TransactOnce`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// The new commit, `None` when every record was a repeat (only `extra` was written).
    pub commit: Option<Id>,
    /// Records left out because this node had already committed them (or they repeated
    /// within the batch).
    pub repeats: usize,
}

/// Like [`Transact`], for records that must be committed at most once into this CDVCS: the
/// replica leaves out every record whose id is in its index of committed records (or repeats
/// within the batch) and writes the ids it commits into the index in the same atomic batch.
/// Deciding inside the replica, between its serialised local commits, leaves no window in
/// which two commits could both take the same record.
#[derive(Message)]
#[rtype(result = "Result<Committed, ReplicaError>")]
pub struct TransactOnce {
    /// The records in order.
    pub txs: Vec<RecordTx>,
    /// State written in the same atomic batch (also when every record was a repeat).
    pub extra: WriteBatch,
    /// What to do with several heads.
    pub policy: WritePolicy,
}

impl Handler<TransactOnce> for ReplicaActor {
    type Result = AtomicResponse<Self, Result<Committed, ReplicaError>>;

    fn handle(&mut self, msg: TransactOnce, _ctx: &mut Context<Self>) -> Self::Result {
        let key = self.key().clone();
        let index: Vec<Vec<u8>> = (msg.txs.iter())
            .map(|t| keys::collected_record(&key.user, &key.id, &t.record))
            .collect();
        let seen = match self.store.store().has_states(&index) {
            Ok(seen) => seen,
            Err(source) => {
                return AtomicResponse::new(Box::pin(fut::ready(Err(ReplicaError::Store {
                    key,
                    source: Box::new(source),
                }))));
            }
        };
        let mut extra = msg.extra;
        let mut taken = HashSet::new();
        let mut kept = Vec::with_capacity(msg.txs.len());
        let mut repeats = 0;
        for ((tx, record_key), seen) in msg.txs.into_iter().zip(index).zip(seen) {
            if seen || !taken.insert(record_key.clone()) {
                repeats += 1;
                continue;
            }
            extra.put_state(record_key, Vec::new());
            kept.push((tx.op, tx.params));
        }
        if kept.is_empty() {
            // Nothing new: write `extra` (e.g. the source checkpoint past the repeats) alone.
            let op = CdvcsOp {
                graph: Vec::new(),
                heads: self.shared.heads(),
            };
            return AtomicResponse::new(Box::pin(self.persist_then_apply(extra, op, None).map(
                move |res, _, _| {
                    res.map(|_| Committed {
                        commit: None,
                        repeats,
                    })
                },
            )));
        }
        let (author, policy) = (self.author.clone(), msg.policy);
        let commit = self.local_commit(kept, extra, move |state, txs| {
            prepare_local(state, &author, policy, txs)
        });
        AtomicResponse::new(Box::pin(commit.map(move |res, _, _| {
            res.map(|id| Committed {
                commit: Some(id),
                repeats,
            })
        })))
    }
}

/// A local commit's records under `policy`.
fn prepare_local(
    state: &Cdvcs,
    author: &str,
    policy: WritePolicy,
    txs: Vec<Transaction>,
) -> Result<(Vec<EncodedCommit>, CdvcsOp), CdvcsError> {
    match policy {
        WritePolicy::Refuse => state
            .prepare_commit(author, now_ms(), txs)
            .map(|(c, op)| (vec![c], op)),
        WritePolicy::MergeFirst => state.prepare_commit_merging(author, now_ms(), txs),
    }
}

/// Join several heads with their deterministic merge (DESIGN §12); answers the merge's id, or
/// `None` when there is at most one head.
#[derive(Message)]
#[rtype(result = "Result<Option<Id>, ReplicaError>")]
pub struct JoinHeads;

impl Handler<JoinHeads> for ReplicaActor {
    type Result = AtomicResponse<Self, Result<Option<Id>, ReplicaError>>;

    fn handle(&mut self, _msg: JoinHeads, _ctx: &mut Context<Self>) -> Self::Result {
        let joined = {
            let state = self.shared.state();
            let guard = match state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            guard.prepare_join()
        };
        let Some((merge, op)) = joined else {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(None))));
        };
        let records = match self.check_authors([&merge]) {
            Ok(records) => records,
            Err(e) => return AtomicResponse::new(Box::pin(fut::ready(Err(e)))),
        };
        let mut batch = self.batch_for(std::slice::from_ref(&merge), &op.heads);
        batch.merge(records);
        let id = merge.id;
        tracing::info!(cdvcs = %self.key(), merge = %id.short(), parents = merge.commit.parents.len(), "joined concurrent heads");
        AtomicResponse::new(Box::pin(
            self.persist_then_apply(batch, op, None)
                .map(move |res, _, _| res.map(|_| Some(id))),
        ))
    }
}

/// Merge the given heads (in this order, which must be the current heads) with optional
/// correcting transactions.
#[derive(Message)]
#[rtype(result = "Result<Id, ReplicaError>")]
pub struct Merge {
    /// The current heads, in the order the merge commit lists them.
    pub heads: Vec<Id>,
    /// Correcting transactions, `(op, params bytes)`.
    pub txs: Vec<(String, Vec<u8>)>,
}

impl Handler<Merge> for ReplicaActor {
    type Result = AtomicResponse<Self, Result<Id, ReplicaError>>;

    fn handle(&mut self, msg: Merge, _ctx: &mut Context<Self>) -> Self::Result {
        let (heads, author) = (msg.heads, self.author.clone());
        AtomicResponse::new(self.local_commit(msg.txs, WriteBatch::new(), |state, txs| {
            state
                .prepare_merge(&heads, &author, now_ms(), txs)
                .map(|(c, op)| (vec![c], op))
        }))
    }
}
