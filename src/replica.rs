//! `ReplicaActor`: one per `(user, crdt-id)` this node holds.
//!
//! It owns the CDVCS state, loads it from the store on start (graph entries and heads, no replay
//! of history), turns local transactions and verified remote batches into one atomic store
//! batch (values, commit records, graph entries, heads), and only once that batch is durable
//! updates the in-memory state and tells its watchers. Everything a watcher sees is durable.
//!
//! The state sits behind an `Arc<RwLock<_>>` in [`ReplicaShared`], which outlives incarnations:
//! connections read the graph from it synchronously for delta computations, while only the
//! actor writes it.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use actix::prelude::*;
use tokio::sync::broadcast;

use crate::crdt::{Cdvcs, CdvcsError, CdvcsOp, Commit, CrdtKey, EncodedCommit, Transaction};
use crate::id::{Id, Verified};
use crate::node::NodeEvent;
use crate::store::{Store, StoreActor, StoreError, WriteBatch, cdvcs, keys};

/// How many change notices a slow watcher may lag behind before it must resynchronise.
const CHANGE_BUFFER: usize = 1024;

/// What a replica tells its watchers after a durable change.
#[derive(Clone, Debug)]
pub struct ReplicaChanged {
    /// Which CDVCS.
    pub key: CrdtKey,
    /// Commits newly added, parents before children.
    pub added: Arc<Vec<Id>>,
    /// The heads after the change.
    pub heads: Vec<Id>,
    /// The connection the change came from, so it is not echoed back (None = local).
    pub origin: Option<u64>,
}

/// One item of [`ReplicaShared::watch_stream`].
#[derive(Clone, Debug)]
pub enum Watched {
    /// A durable change.
    Changed(ReplicaChanged),
    /// This many notices were missed; re-read the state.
    Lagged(u64),
}

/// The part of a replica that outlives its incarnations.
pub struct ReplicaShared {
    /// Which CDVCS.
    pub key: CrdtKey,
    state: RwLock<Arc<RwLock<Cdvcs>>>,
    changes: broadcast::Sender<ReplicaChanged>,
    bus: broadcast::Sender<NodeEvent>,
}

impl ReplicaShared {
    /// A shared handle for `key` with an empty (root-only) state until the actor loads it.
    /// Changes are also announced on the node's `bus`.
    pub fn new(key: CrdtKey, bus: broadcast::Sender<NodeEvent>) -> Arc<ReplicaShared> {
        let (state, _root) = Cdvcs::new(&key);
        Arc::new(ReplicaShared {
            key,
            state: RwLock::new(Arc::new(RwLock::new(state))),
            changes: broadcast::channel(CHANGE_BUFFER).0,
            bus,
        })
    }

    fn announce(&self, change: ReplicaChanged) {
        let _ = self.changes.send(change.clone());
        let _ = self.bus.send(NodeEvent::Replica(Watched::Changed(change)));
    }

    /// The current state (read it, never write it: only the actor does).
    pub fn state(&self) -> Arc<RwLock<Cdvcs>> {
        match self.state.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<Id> {
        let state = self.state();
        let guard = match state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.heads().iter().copied().collect()
    }

    /// Watch durable changes.
    pub fn watch(&self) -> broadcast::Receiver<ReplicaChanged> {
        self.changes.subscribe()
    }

    /// Durable changes as a stream (for `ctx.add_stream`); a lagging watcher gets
    /// [`Watched::Lagged`] and must resynchronise from the state.
    pub fn watch_stream(&self) -> impl futures_util::Stream<Item = Watched> + 'static {
        futures_util::stream::unfold(self.changes.subscribe(), |mut rx| async move {
            match rx.recv().await {
                Ok(change) => Some((Watched::Changed(change), rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((Watched::Lagged(n), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }

    /// Publishes a freshly loaded state and tells watchers to re-read it.
    fn install(&self, state: Cdvcs) {
        let heads: Vec<Id> = state.heads().iter().copied().collect();
        let fresh = Arc::new(RwLock::new(state));
        match self.state.write() {
            Ok(mut g) => *g = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        self.announce(ReplicaChanged {
            key: self.key.clone(),
            added: Arc::new(Vec::new()),
            heads,
            origin: None,
        });
    }
}

/// Why a replica refused or failed a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The CDVCS refused the operation.
    #[error("CDVCS {key}")]
    Cdvcs {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: CdvcsError,
    },
    /// Reading or writing the store failed.
    #[error("CDVCS {key}: store")]
    Store {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why (boxed: store errors carry paths and keep results small).
        #[source]
        source: Box<StoreError>,
    },
    /// A stored record could not be decoded.
    #[error("CDVCS {key}: stored record {what} is damaged: {detail}")]
    Damaged {
        /// Which CDVCS.
        key: CrdtKey,
        /// Which record.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// A remote batch references values this node does not have.
    #[error("CDVCS {key}: commit {commit} references value {value} which was not supplied")]
    MissingValue {
        /// Which CDVCS.
        key: CrdtKey,
        /// The commit.
        commit: Id,
        /// The absent value.
        value: Id,
    },
    /// The store actor is gone (it is being restarted).
    #[error("CDVCS {key}: the store actor is unavailable")]
    StoreUnavailable {
        /// Which CDVCS.
        key: CrdtKey,
    },
}

/// Finds the current store actor incarnation, where the replica sends its writes.
pub type StoreWriter = Arc<
    dyn Fn() -> futures_util::future::LocalBoxFuture<'static, Option<Addr<StoreActor>>>
        + Send
        + Sync,
>;

/// The actor that owns one CDVCS.
pub struct ReplicaActor {
    shared: Arc<ReplicaShared>,
    store: Store,
    writer: StoreWriter,
}

impl ReplicaActor {
    /// Loads the CDVCS `shared.key` from `store` (creating its root when absent) and publishes
    /// the loaded state in `shared`.
    pub fn load(
        shared: Arc<ReplicaShared>,
        store: Store,
        writer: StoreWriter,
    ) -> Result<ReplicaActor, ReplicaError> {
        let key = shared.key.clone();
        let store_err = |source| ReplicaError::Store {
            key: key.clone(),
            source: Box::new(source),
        };
        let state = match cdvcs::load(&store, &key) {
            Ok(Some(state)) => state,
            Ok(None) => {
                let (state, batch) = cdvcs::create(&key);
                store.write(&batch).map_err(store_err)?;
                state
            }
            Err(cdvcs::LoadError::Store { source, .. }) => return Err(store_err(*source)),
            Err(cdvcs::LoadError::Damaged { what, detail, .. }) => {
                return Err(ReplicaError::Damaged { key, what, detail });
            }
            Err(cdvcs::LoadError::Inconsistent { source, .. }) => {
                return Err(ReplicaError::Cdvcs { key, source });
            }
        };
        shared.install(state);
        Ok(ReplicaActor {
            shared,
            store,
            writer,
        })
    }

    fn key(&self) -> &CrdtKey {
        &self.shared.key
    }

    /// Builds the store batch for new commits: the commit records, graph entries and heads.
    fn batch_for(&self, commits: &[EncodedCommit], heads: &[Id]) -> WriteBatch {
        cdvcs::commits_batch(self.key(), commits, heads)
    }

    /// Writes `batch` durably, then applies `op` to the state and tells the watchers.
    fn persist_then_apply(
        &mut self,
        batch: WriteBatch,
        op: CdvcsOp,
        origin: Option<u64>,
    ) -> ResponseActFuture<Self, Result<Vec<Id>, ReplicaError>> {
        let key = self.key().clone();
        let find = (self.writer)();
        Box::pin(
            async move {
                let Some(writer) = find.await else {
                    return Err(ReplicaError::StoreUnavailable { key });
                };
                match writer.send(crate::store::Write(batch)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(source)) => Err(ReplicaError::Store {
                        key,
                        source: Box::new(source),
                    }),
                    Err(_) => Err(ReplicaError::StoreUnavailable { key }),
                }
            }
            .into_actor(self)
            .map(move |res, act, _ctx| {
                res?;
                let state = act.shared.state();
                let mut guard = match state.write() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let added = guard
                    .downstream(&op)
                    .map_err(|source| ReplicaError::Cdvcs {
                        key: act.key().clone(),
                        source,
                    })?;
                let heads: Vec<Id> = guard.heads().iter().copied().collect();
                drop(guard);
                if !added.is_empty() && heads.len() > 1 {
                    tracing::info!(
                        cdvcs = %act.key(),
                        heads = heads.len(),
                        "the CDVCS has {} heads (concurrent writes): writers join them; on a stopped store `replikativ merge` does",
                        heads.len()
                    );
                }
                if !added.is_empty() {
                    act.shared.announce(ReplicaChanged {
                        key: act.key().clone(),
                        added: Arc::new(added.clone()),
                        heads,
                        origin,
                    });
                }
                Ok(added)
            }),
        )
    }
}

impl Actor for ReplicaActor {
    type Context = Context<Self>;
}

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
    /// Who commits.
    pub author: String,
    /// State written in the same atomic batch.
    pub extra: WriteBatch,
    /// What to do with several heads.
    pub policy: WritePolicy,
}

impl Handler<Transact> for ReplicaActor {
    type Result = AtomicResponse<Self, Result<Id, ReplicaError>>;

    fn handle(&mut self, msg: Transact, _ctx: &mut Context<Self>) -> Self::Result {
        let (author, policy) = (msg.author, msg.policy);
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
    /// Who commits.
    pub author: String,
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
        let seen = match self.store.has_states(&index) {
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
        let (author, policy) = (msg.author, msg.policy);
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
        let batch = self.batch_for(std::slice::from_ref(&merge), &op.heads);
        let id = merge.id;
        tracing::info!(cdvcs = %self.key(), merge = %id.short(), parents = merge.commit.parents.len(), "joined concurrent heads");
        AtomicResponse::new(Box::pin(
            self.persist_then_apply(batch, op, None)
                .map(move |res, _, _| res.map(|_| Some(id))),
        ))
    }
}

impl ReplicaActor {
    /// A commit made here (transact or merge): its param values, the commit record, graph entry,
    /// heads and `extra` go into one atomic batch; the state changes only once it is durable.
    fn local_commit(
        &mut self,
        txs: Vec<(String, Vec<u8>)>,
        extra: WriteBatch,
        prepare: impl FnOnce(
            &Cdvcs,
            Vec<Transaction>,
        ) -> Result<(Vec<EncodedCommit>, CdvcsOp), CdvcsError>,
    ) -> ResponseActFuture<Self, Result<Id, ReplicaError>> {
        let key = self.key().clone();
        let mut values = WriteBatch::new();
        let txs: Vec<Transaction> = txs
            .into_iter()
            .map(|(op, params)| Transaction {
                op,
                params: values.put_value(params),
            })
            .collect();
        let prepared = {
            let state = self.shared.state();
            let guard = match state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            prepare(&guard, txs)
        };
        let (commits, op) = match prepared {
            Ok(x) => x,
            Err(source) => {
                return Box::pin(fut::ready(Err(ReplicaError::Cdvcs { key, source })));
            }
        };
        let mut batch = self.batch_for(&commits, &op.heads);
        batch.merge(values);
        batch.merge(extra);
        // The commit asked for is the last one (a merge-first join comes before it).
        let Some(id) = commits.last().map(|c| c.id) else {
            return Box::pin(fut::ready(Err(ReplicaError::Cdvcs {
                key,
                source: CdvcsError::NoTransactions,
            })));
        };
        Box::pin(
            self.persist_then_apply(batch, op, None)
                .map(move |res, _, _| res.map(|_| id)),
        )
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
    /// Who merges.
    pub author: String,
}

impl Handler<Merge> for ReplicaActor {
    type Result = AtomicResponse<Self, Result<Id, ReplicaError>>;

    fn handle(&mut self, msg: Merge, _ctx: &mut Context<Self>) -> Self::Result {
        let (heads, author) = (msg.heads, msg.author);
        AtomicResponse::new(self.local_commit(msg.txs, WriteBatch::new(), |state, txs| {
            state
                .prepare_merge(&heads, &author, now_ms(), txs)
                .map(|(c, op)| (vec![c], op))
        }))
    }
}

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
            match self.store.has_value(value) {
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
        let mut batch = self.batch_for(&fresh, &heads);
        // The write transaction leaves ids already stored alone: no read per value here.
        for value in msg.values {
            batch.put_verified_value(value);
        }
        let op = CdvcsOp {
            graph: op.graph,
            heads,
        };
        AtomicResponse::new(self.persist_then_apply(batch, op, msg.origin))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The root commit record of `key`, for peers that need its bytes.
pub fn root_of(key: &CrdtKey) -> EncodedCommit {
    Commit::root(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realize::realizer::error_chain;

    /// Regression: the message repeated its source ("…merge them first: …merge them first").
    #[test]
    fn a_replica_error_names_its_cdvcs_and_its_cause_once() {
        let key = CrdtKey::new("u", uuid::Uuid::nil());
        let err = ReplicaError::Cdvcs {
            key: key.clone(),
            source: CdvcsError::MultipleHeads {
                heads: vec![Id::of(b"a"), Id::of(b"b")],
            },
        };
        let chain = error_chain(&err);
        assert_eq!(chain.matches("merge them first").count(), 1, "{chain}");
        assert!(chain.contains(&key.to_string()), "{chain}");
    }
}
