//! OR-Map and LWW register on a node, replicated as op logs over a CDVCS.
//!
//! The protocol replicates CDVCS commit graphs; an OR-Map or a register rides on one: every
//! update is a commit with one `ormap/op` or `lwwr/op` transaction whose params are the pure
//! CRDT op ([`OrMapOp`], [`LwwrOp`]). Reading folds every op of the graph (all heads, in a
//! deterministic order) into the pure value. Because those ops commute (unique tags,
//! observed-remove, tombstones; larger timestamp wins), every replica that holds the same commits
//! reads the same value whatever order they arrived in. Concurrent updates leave several heads;
//! the next update merges them first (an empty merge commit), so writers never block on
//! conflicts. Reads cost O(ops in the log); writes O(1) plus the merge.

use std::collections::HashSet;

use crate::crdt::{CrdtKey, Lwwr, LwwrOp, OrMap, OrMapOp, Tag};
use crate::id::Id;
use crate::realize::realizer::{ConflictPolicy, plan};
use crate::replica::now_ms;
use crate::stage::{Stage, StageError};

/// The register writer id of the node with `key`: the key's first 16 bytes, so a node's id
/// is stable across restarts and distinct from other nodes'.
fn writer_id(key: &crate::identity::PublicKey) -> uuid::Uuid {
    let mut id = [0u8; 16];
    id.copy_from_slice(&key.as_bytes()[..16]);
    uuid::Uuid::from_bytes(id)
}

/// The op name of an OR-Map update.
pub const ORMAP_OP: &str = "ormap/op";
/// The op name of a register write.
pub const LWWR_OP: &str = "lwwr/op";

/// Why an op-log read failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpLogError {
    /// The stage call failed.
    #[error(transparent)]
    Stage(#[from] StageError),
    /// Reading the log from the store failed.
    #[error("CDVCS {key}: reading the op log")]
    Read {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: crate::store::cdvcs::CommitReadError,
    },
    /// A commit or op of the log is missing or does not decode.
    #[error("CDVCS {key}: {what} {id} is missing or damaged")]
    Damaged {
        /// Which CDVCS.
        key: CrdtKey,
        /// Commit, value or op.
        what: &'static str,
        /// Its id.
        id: Id,
    },
}

impl Stage {
    /// Creates (or opens) the OR-Map `key` (an op log in the CDVCS of that name).
    pub async fn create_ormap(&self, key: &CrdtKey) -> Result<(), StageError> {
        self.create_cdvcs(key).await
    }

    /// Associates `value` with `k` (concurrent assocs keep both values). Answers the commit.
    pub async fn ormap_assoc(
        &self,
        key: &CrdtKey,
        k: String,
        value: Vec<u8>,
    ) -> Result<Id, OpLogError> {
        let op: OrMapOp<String, Vec<u8>> = OrMapOp {
            adds: vec![(Tag::random(), k, value)],
            removes: Vec::new(),
        };
        self.append(key, ORMAP_OP, rmp_serde::to_vec(&op).unwrap_or_default())
            .await
    }

    /// Removes every value of `k` this node has observed. Answers the commit, or `None` when
    /// there was nothing to remove.
    pub async fn ormap_dissoc(&self, key: &CrdtKey, k: &str) -> Result<Option<Id>, OpLogError> {
        let mut map = self.ormap(key).await?;
        let op = map.dissoc(&k.to_string());
        if op.removes.is_empty() {
            return Ok(None);
        }
        let bytes = rmp_serde::to_vec(&op).unwrap_or_default();
        Ok(Some(self.append(key, ORMAP_OP, bytes).await?))
    }

    /// The OR-Map's current value (every op of the log folded).
    pub async fn ormap(&self, key: &CrdtKey) -> Result<OrMap<String, Vec<u8>>, OpLogError> {
        let mut map = OrMap::new();
        for bytes in self.ops(key, ORMAP_OP).await? {
            let op: OrMapOp<String, Vec<u8>> =
                rmp_serde::from_slice(&bytes).map_err(|_| OpLogError::Damaged {
                    key: key.clone(),
                    what: "OR-Map op",
                    id: Id::of(&bytes),
                })?;
            map.downstream(&op);
        }
        Ok(map)
    }

    /// Creates (or opens) the register `key`.
    pub async fn create_register(&self, key: &CrdtKey) -> Result<(), StageError> {
        self.create_cdvcs(key).await
    }

    /// Writes `value` (the larger timestamp wins; ties by writer id). Answers the commit.
    pub async fn register_set(&self, key: &CrdtKey, value: Vec<u8>) -> Result<Id, OpLogError> {
        let op = LwwrOp {
            ts: now_ms(),
            writer: writer_id(&self.peers().public_key()),
            value,
        };
        self.append(key, LWWR_OP, rmp_serde::to_vec(&op).unwrap_or_default())
            .await
    }

    /// The register's current value.
    pub async fn register(&self, key: &CrdtKey) -> Result<Option<Vec<u8>>, OpLogError> {
        let mut reg: Lwwr<Vec<u8>> = Lwwr::new();
        for bytes in self.ops(key, LWWR_OP).await? {
            let op: LwwrOp<Vec<u8>> =
                rmp_serde::from_slice(&bytes).map_err(|_| OpLogError::Damaged {
                    key: key.clone(),
                    what: "register op",
                    id: Id::of(&bytes),
                })?;
            reg.downstream(&op);
        }
        Ok(reg.get().cloned())
    }

    /// Commits one op, joining concurrent heads first (in the same atomic batch).
    async fn append(&self, key: &CrdtKey, op: &str, params: Vec<u8>) -> Result<Id, OpLogError> {
        let txs = vec![(op.to_string(), params)];
        let policy = crate::stage::WritePolicy::MergeFirst;
        Ok(self
            .transact_with(key, txs, crate::store::WriteBatch::new(), policy)
            .await?)
    }

    /// The params of every `op` transaction of the log, in a deterministic causal order.
    async fn ops(&self, key: &CrdtKey, op: &str) -> Result<Vec<Vec<u8>>, OpLogError> {
        let shared = self
            .replicas()
            .ensure(key)
            .await
            .map_err(StageError::from)?;
        let order = {
            let state = shared.state();
            let guard = match state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            plan(&guard, &HashSet::new(), ConflictPolicy::Union).0
        };
        let store = &self.peers().store;
        let damaged = |what, id| OpLogError::Damaged {
            key: key.clone(),
            what,
            id,
        };
        let mut out = Vec::new();
        for id in order {
            let loaded = crate::store::cdvcs::load_commit(store, &id)
                .map_err(|source| OpLogError::Read {
                    key: key.clone(),
                    source,
                })?
                .ok_or_else(|| damaged("commit", id))?;
            let ops = loaded.commit.commit.transactions.iter().map(|t| &t.op);
            for (tx_op, (pid, bytes)) in ops.zip(loaded.params) {
                if tx_op == op {
                    out.push(bytes.ok_or_else(|| damaged("value", pid))?);
                }
            }
        }
        Ok(out)
    }
}
