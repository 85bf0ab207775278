//! `Stage`: the user's handle on a running node — create a CDVCS, transact, merge, read heads
//! and history, watch durable changes, connect to peers. Every call answers with a typed result.
//!
//! ```text
//!   user code ──► Stage ──► ReplicaActor (per CDVCS) ──► store-writer thread (group commit, durable)
//!                   └─────► peers (connectors) ◄──► other nodes
//! ```

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::crdt::CrdtKey;
use crate::id::Id;
use crate::peer::context::{PeerContext, PeerError};
pub use crate::replica::{Committed, RecordTx, WritePolicy};
use crate::replica::{JoinHeads, Merge, ReplicaChanged, ReplicaError, Transact, TransactOnce};
use crate::replicas::{RegistryError, Replicas};
use crate::store::WriteBatch;

/// Why a stage call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StageError {
    /// The replica refused or failed the operation.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The node could not provide the replica.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The node could not open the connection.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The replica's actor is gone (it is being restarted, or the node is stopping).
    #[error("CDVCS {key}: its replica actor is unavailable (restarting or stopping)")]
    Unavailable {
        /// Which CDVCS.
        key: CrdtKey,
    },
    /// A transaction names a system operation (grants and revokes of write access).
    #[error("CDVCS {key}: {op} is a system operation; use Stage::grant_write or revoke_write")]
    SystemOp {
        /// Which CDVCS.
        key: CrdtKey,
        /// The op.
        op: String,
    },
    /// Only the owner of a CDVCS grants and revokes write access.
    #[error("CDVCS {key}: only its owner grants or revokes write access (this node is {node})")]
    NotOwner {
        /// Which CDVCS.
        key: CrdtKey,
        /// This node's key.
        node: crate::identity::PublicKey,
    },
}

/// Refuses user transactions that name a system operation.
fn user_ops<'a>(key: &CrdtKey, mut ops: impl Iterator<Item = &'a str>) -> Result<(), StageError> {
    match ops.find(|op| crate::crdt::authorship::is_access_op(op)) {
        Some(op) => Err(StageError::SystemOp {
            key: key.clone(),
            op: op.to_owned(),
        }),
        None => Ok(()),
    }
}

/// The user's handle on a node. Cheap to clone.
#[derive(Clone)]
pub struct Stage {
    replicas: Arc<Replicas>,
    peers: Arc<PeerContext>,
}

impl Stage {
    pub(crate) fn new(replicas: Arc<Replicas>, peers: Arc<PeerContext>) -> Stage {
        Stage { replicas, peers }
    }

    /// The replicas of the node.
    pub(crate) fn replicas(&self) -> &Arc<Replicas> {
        &self.replicas
    }

    /// The node's peer context (its peer id names op-log writers).
    pub(crate) fn peers(&self) -> &Arc<PeerContext> {
        &self.peers
    }

    /// Creates (or opens) the CDVCS `key` on this node; peers subscribed to it will sync it.
    pub async fn create_cdvcs(&self, key: &CrdtKey) -> Result<(), StageError> {
        self.replicas.ensure(key).await?;
        Ok(())
    }

    /// Commits `txs` (`(op, params value bytes)`) onto the single head of `key`. Refused while
    /// the CDVCS has several heads (merge first, or use [`WritePolicy::MergeFirst`] through
    /// [`transact_with`](Self::transact_with)) or when `txs` is empty. Answers once durable.
    pub async fn transact(
        &self,
        key: &CrdtKey,
        txs: Vec<(String, Vec<u8>)>,
    ) -> Result<Id, StageError> {
        self.transact_with(key, txs, WriteBatch::new(), WritePolicy::Refuse)
            .await
    }

    /// Like [`transact`](Self::transact), with `extra` state (e.g. a source checkpoint)
    /// written in the same atomic batch as the commit, and an explicit `policy` for several
    /// heads: a writer of commutative ops passes [`WritePolicy::MergeFirst`], which joins the
    /// heads with their deterministic merge in the same batch before committing.
    pub async fn transact_with(
        &self,
        key: &CrdtKey,
        txs: Vec<(String, Vec<u8>)>,
        extra: WriteBatch,
        policy: WritePolicy,
    ) -> Result<Id, StageError> {
        user_ops(key, txs.iter().map(|(op, _)| op.as_str()))?;
        let msg = Transact { txs, extra, policy };
        self.ask(key, msg).await
    }

    /// Grants `grantee` write access to the owned CDVCS `key` (DESIGN §11); this node must be
    /// its owner. Answers the commit that holds the grant.
    pub async fn grant_write(
        &self,
        key: &CrdtKey,
        grantee: &crate::identity::PublicKey,
    ) -> Result<Id, StageError> {
        self.change_access(key, crate::crdt::authorship::GRANT_WRITE, grantee)
            .await
    }

    /// Revokes `grantee`'s write access to the owned CDVCS `key`; this node must be its owner.
    pub async fn revoke_write(
        &self,
        key: &CrdtKey,
        grantee: &crate::identity::PublicKey,
    ) -> Result<Id, StageError> {
        self.change_access(key, crate::crdt::authorship::REVOKE_WRITE, grantee)
            .await
    }

    async fn change_access(
        &self,
        key: &CrdtKey,
        op: &str,
        grantee: &crate::identity::PublicKey,
    ) -> Result<Id, StageError> {
        let node = self.peers.public_key();
        if crate::crdt::authorship::owner_of(key) != Some(node) {
            return Err(StageError::NotOwner {
                key: key.clone(),
                node,
            });
        }
        // The params value is the grantee's key bytes, so the params id is its key id.
        let txs = vec![(op.to_owned(), grantee.as_bytes().to_vec())];
        let msg = Transact {
            txs,
            extra: WriteBatch::new(),
            policy: WritePolicy::MergeFirst,
        };
        self.ask(key, msg).await
    }

    /// Merges the current heads (in the order given) with optional correcting transactions.
    pub async fn merge(
        &self,
        key: &CrdtKey,
        heads: Vec<Id>,
        txs: Vec<(String, Vec<u8>)>,
    ) -> Result<Id, StageError> {
        user_ops(key, txs.iter().map(|(op, _)| op.as_str()))?;
        let msg = Merge { heads, txs };
        self.ask(key, msg).await
    }

    /// Commits records that must each be committed at most once into `key` by this node
    /// (e.g. tweets by id, which a stream may deliver again): records already committed, or
    /// repeated in `txs`, are left out and counted; the ids committed are indexed in the same
    /// atomic batch as the commit and `extra`. With nothing new, only `extra` is written.
    pub async fn transact_once(
        &self,
        key: &CrdtKey,
        txs: Vec<RecordTx>,
        extra: WriteBatch,
        policy: WritePolicy,
    ) -> Result<Committed, StageError> {
        user_ops(key, txs.iter().map(|t| t.op.as_str()))?;
        let msg = TransactOnce { txs, extra, policy };
        self.ask(key, msg).await
    }

    /// Joins several heads of `key` with their deterministic merge (DESIGN §12): replicas that
    /// join the same heads make the same commit. Answers its id, or `None` with one head.
    pub async fn join_heads(&self, key: &CrdtKey) -> Result<Option<Id>, StageError> {
        self.ask(key, JoinHeads).await
    }

    /// Imports commits made and signed elsewhere (e.g. by an owner's key that is not this
    /// node's), with the values their transactions name, parents before children: they are
    /// judged, stored and relayed exactly as commits from a peer (hashes, signatures, the
    /// writer rule; every parent must be here). Answers the ids newly stored.
    pub async fn import(
        &self,
        key: &CrdtKey,
        commits: Vec<crate::crdt::EncodedCommit>,
        values: Vec<Vec<u8>>,
    ) -> Result<Vec<Id>, StageError> {
        let values: Vec<crate::id::Verified> =
            values.into_iter().map(crate::id::Verified::new).collect();
        let carried: std::collections::BTreeSet<Id> = values.iter().map(|v| v.id()).collect();
        let values_to_check = commits
            .iter()
            .filter(|c| !c.commit.parents.is_empty())
            .flat_map(|c| c.commit.transactions.iter().map(|t| t.params))
            .filter(|id| !carried.contains(id))
            .collect();
        let msg = crate::replica::ApplyRemote {
            commits,
            values,
            packs: Vec::new(),
            values_to_check,
            origin: None,
        };
        self.ask(key, msg).await
    }

    /// Sends `msg` to the replica of `key` (started when absent) and answers its reply.
    async fn ask<M, T>(&self, key: &CrdtKey, msg: M) -> Result<T, StageError>
    where
        M: actix::Message<Result = Result<T, ReplicaError>> + Send + 'static,
        M::Result: Send,
        crate::replica::ReplicaActor: actix::Handler<M>,
    {
        let addr = self.replicas.addr(key).await?;
        match addr.send(msg).await {
            Ok(res) => Ok(res?),
            Err(_) => Err(StageError::Unavailable { key: key.clone() }),
        }
    }

    /// The current heads (sorted by id).
    pub async fn heads(&self, key: &CrdtKey) -> Result<Vec<Id>, StageError> {
        Ok(self.replicas.ensure(key).await?.heads())
    }

    /// The commits of `head`'s history in realization order (DESIGN §5).
    pub async fn history(&self, key: &CrdtKey, head: &Id) -> Result<Vec<Id>, StageError> {
        let shared = self.replicas.ensure(key).await?;
        let state = shared.state();
        let guard = match state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.history(head).map_err(|source| {
            StageError::Replica(ReplicaError::Cdvcs {
                key: key.clone(),
                source,
            })
        })
    }

    /// Durable changes of `key` from now on.
    pub async fn watch(
        &self,
        key: &CrdtKey,
    ) -> Result<broadcast::Receiver<ReplicaChanged>, StageError> {
        Ok(self.replicas.ensure(key).await?.watch())
    }

    /// Connects to a peer (`ws://host:port/`) and keeps the connection up (retrying with
    /// backoff); every CDVCS this node holds is subscribed there.
    pub async fn connect(&self, url: &str) -> Result<(), StageError> {
        self.peers.connect(url).await?;
        Ok(())
    }
}
