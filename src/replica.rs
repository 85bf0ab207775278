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

mod authors;
mod local;
mod remote;
mod shared;

pub use local::{Committed, JoinHeads, Merge, RecordTx, Transact, TransactOnce, WritePolicy};
pub use remote::ApplyRemote;
pub use shared::{NodeEvent, ReplicaChanged, ReplicaShared, Watched};

use crate::identity::Keypair;
use std::sync::Arc;

use actix::prelude::*;

use crate::crdt::{Cdvcs, CdvcsError, CdvcsOp, Commit, CrdtKey, EncodedCommit, Transaction};
use crate::id::Id;
use crate::store::{StoreError, StoreHandle, WriteBatch, cdvcs};

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
    /// A commit is refused: its signature, or its author's right to write (DESIGN §11).
    #[error("CDVCS {key}: refused")]
    Refused {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: crate::crdt::authorship::Refusal,
    },
    /// The stored history could not be judged by the writer rule.
    #[error("CDVCS {key}: judging the stored history")]
    History {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: Box<crate::store::cdvcs::JudgeError>,
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

/// The actor that owns one CDVCS.
pub struct ReplicaActor {
    shared: Arc<ReplicaShared>,
    store: StoreHandle,
    /// The node's key: the author of this node's commits, which it signs.
    signer: Keypair,
    /// The signer's public key as commits name their author.
    author: String,
    /// Whether this node signs its commits: always, but in the benchmark baseline.
    signs: bool,
    /// The writer rule of an owned CDVCS, once judged (see `authors.rs`).
    writers: Option<crate::crdt::authorship::Writers>,
    /// The keys received commits name as authors, decoded once (see `authors.rs`).
    author_keys: crate::crdt::authorship::AuthorKeys,
}

impl ReplicaActor {
    /// Loads the CDVCS `shared.key` from `store` (creating its root when absent) and publishes
    /// the loaded state in `shared`.
    pub fn load(
        shared: Arc<ReplicaShared>,
        store: StoreHandle,
        signer: Keypair,
    ) -> Result<ReplicaActor, ReplicaError> {
        let key = shared.key.clone();
        let store_err = |source| ReplicaError::Store {
            key: key.clone(),
            source: Box::new(source),
        };
        let opened = match crate::store::graph::open(store.store(), &key) {
            Ok(None) => {
                let (_, batch) = cdvcs::create(&key);
                store.store().write(&batch).map_err(store_err)?;
                crate::store::graph::open(store.store(), &key)
            }
            other => other,
        };
        let state = match opened {
            Ok(Some(state)) => state,
            Ok(None) => {
                let detail = "missing right after it was written".into();
                let what = "heads record".into();
                return Err(ReplicaError::Damaged { key, what, detail });
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
        let author = signer.public().to_string();
        Ok(ReplicaActor {
            shared,
            store,
            signer,
            author,
            signs: true,
            writers: None,
            author_keys: Default::default(),
        })
    }

    /// Benchmark baseline only: with `Some(author)`, commits as before signing existed — that
    /// author name, no signature (see `NodeBuilder::unsigned_commits_for_benchmark`).
    pub(crate) fn unsigned_for_benchmark(mut self, author: Option<String>) -> ReplicaActor {
        if let Some(author) = author {
            self.author = author;
            self.signs = false;
        }
        self
    }

    fn key(&self) -> &CrdtKey {
        &self.shared.key
    }

    /// Builds the store batch for new commits: the commit records, graph entries and heads.
    fn batch_for(&self, commits: &[EncodedCommit], heads: &[Id]) -> WriteBatch {
        let state = self.shared.state();
        let guard = match state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        cdvcs::commits_batch_with(self.key(), commits, heads, &|id| guard.generation(id))
    }

    /// Writes `batch` durably, then applies `op` to the state and tells the watchers. `op`
    /// holds only commits the state did not hold, as checked before the write.
    fn persist_then_apply(
        &mut self,
        batch: WriteBatch,
        op: CdvcsOp,
        origin: Option<u64>,
    ) -> ResponseActFuture<Self, Result<Vec<Id>, ReplicaError>> {
        let key = self.key().clone();
        let store = self.store.clone();
        Box::pin(
            async move {
                match store.write(batch).await {
                    Ok(()) => Ok(()),
                    Err(StoreError::WriterStopped) => Err(ReplicaError::StoreUnavailable { key }),
                    Err(source) => Err(ReplicaError::Store {
                        key,
                        source: Box::new(source),
                    }),
                }
            }
            .into_actor(self)
            .map(move |res, act, _ctx| {
                let ids = op.graph.iter().map(|(id, _)| *id);
                if let Err(e) = res {
                    act.writers_unstored(ids);
                    return Err(e);
                }
                act.writers_stored(ids);
                let state = act.shared.state();
                let mut guard = match state.write() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                // Every caller built `op` of commits the state did not hold, checked before
                // the write: new, though the store now answers them.
                let added = guard
                    .downstream_written(&op)
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
        // Every commit this node authors is signed; a deterministic merge has no author.
        let commits: Vec<EncodedCommit> = commits
            .into_iter()
            .map(|c| {
                if c.commit.is_deterministic_merge() || !self.signs {
                    c
                } else {
                    c.signed(&self.signer)
                }
            })
            .collect();
        let records = match self.check_own(&commits) {
            Ok(records) => records,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let mut batch = self.batch_for(&commits, &op.heads);
        batch.merge(records);
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
    use replikativ_actors::error_chain;

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
