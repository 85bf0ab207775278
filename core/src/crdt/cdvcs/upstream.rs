//! Upstream operations: the local user's commit, merge and pull. Each is pure: it returns the
//! new commit record (to be stored as a value) and the op to broadcast, and applies that op to
//! the state. A refused operation leaves the state unchanged.

use crate::crdt::commit::{Commit, EncodedCommit, Transaction};
use crate::id::Id;

use super::{Cdvcs, CdvcsError, CdvcsOp};

impl Cdvcs {
    /// Commits `txs` onto the single head (transact = prepare + commit in one step).
    /// Refused while there are several heads (`MultipleHeads`), with no head (`NoHead`), or
    /// with no transactions (`NoTransactions`). The op carries only the new entry and heads.
    pub fn commit(
        &mut self,
        author: &str,
        ts: i64,
        txs: Vec<Transaction>,
    ) -> Result<(EncodedCommit, CdvcsOp), CdvcsError> {
        let (encoded, op) = self.prepare_commit(author, ts, txs)?;
        self.downstream(&op)?;
        Ok((encoded, op))
    }

    /// [`commit`](Self::commit) without applying it: the record and op to persist first and
    /// apply with `downstream` once durable. Same refusals; the state is not touched.
    pub fn prepare_commit(
        &self,
        author: &str,
        ts: i64,
        txs: Vec<Transaction>,
    ) -> Result<(EncodedCommit, CdvcsOp), CdvcsError> {
        let head = match self.heads.len() {
            0 => return Err(CdvcsError::NoHead),
            1 => self
                .heads
                .iter()
                .next()
                .copied()
                .ok_or(CdvcsError::NoHead)?,
            _ => {
                return Err(CdvcsError::MultipleHeads {
                    heads: self.heads.iter().copied().collect(),
                });
            }
        };
        if txs.is_empty() {
            return Err(CdvcsError::NoTransactions);
        }
        Ok(encode_commit(vec![head], author, ts, txs))
    }

    /// Merges the current heads with a commit whose parents are `heads_in_order` (the order a
    /// realizer applies them in) and which carries `correcting` transactions. Without
    /// correcting transactions the merge is deterministic (see [`prepare_join`](Self::prepare_join)):
    /// its parents are sorted and it carries no author or time, whatever order and author are
    /// given; with them it is authored and keeps the given order.
    /// Refused unless `heads_in_order` is exactly the current heads, each once (`StaleHeads`),
    /// and there are at least two (`NothingToMerge`).
    pub fn merge(
        &mut self,
        heads_in_order: &[Id],
        author: &str,
        ts: i64,
        correcting: Vec<Transaction>,
    ) -> Result<(EncodedCommit, CdvcsOp), CdvcsError> {
        let (encoded, op) = self.prepare_merge(heads_in_order, author, ts, correcting)?;
        self.downstream(&op)?;
        Ok((encoded, op))
    }

    /// [`merge`](Self::merge) without applying it (see [`prepare_commit`](Self::prepare_commit)).
    pub fn prepare_merge(
        &self,
        heads_in_order: &[Id],
        author: &str,
        ts: i64,
        correcting: Vec<Transaction>,
    ) -> Result<(EncodedCommit, CdvcsOp), CdvcsError> {
        let given: std::collections::BTreeSet<Id> = heads_in_order.iter().copied().collect();
        if given != self.heads || given.len() != heads_in_order.len() {
            return Err(CdvcsError::StaleHeads {
                given: heads_in_order.to_vec(),
                current: self.heads.iter().copied().collect(),
            });
        }
        if let [only] = heads_in_order {
            return Err(CdvcsError::NothingToMerge { head: *only });
        }
        if heads_in_order.is_empty() {
            return Err(CdvcsError::NoHead);
        }
        if correcting.is_empty() {
            return Ok(encode_merge(
                Commit::merge_of(heads_in_order.to_vec()).encode(),
            ));
        }
        Ok(encode_commit(
            heads_in_order.to_vec(),
            author,
            ts,
            correcting,
        ))
    }

    /// The deterministic merge of the current heads (DESIGN §12): a commit that only joins
    /// them, with its parents sorted and no author or time, so every replica that merges the
    /// same heads makes the same commit. `None` with at most one head (nothing to merge).
    /// The state is not touched.
    pub fn prepare_join(&self) -> Option<(EncodedCommit, CdvcsOp)> {
        if self.heads.len() < 2 {
            return None;
        }
        let parents: Vec<Id> = self.heads.iter().copied().collect();
        Some(encode_merge(Commit::merge_of(parents).encode()))
    }

    /// A writer's commit under the merge-first policy: with several heads, first their
    /// deterministic merge, then `txs` on top of it. Answers the new commit records (the merge
    /// first, if any) and one op adding them with the new commit as the only head. Refused
    /// with no head (`NoHead`) or no transactions (`NoTransactions`). The state is not touched.
    pub fn prepare_commit_merging(
        &self,
        author: &str,
        ts: i64,
        txs: Vec<Transaction>,
    ) -> Result<(Vec<EncodedCommit>, CdvcsOp), CdvcsError> {
        let Some((merge, merge_op)) = self.prepare_join() else {
            let (commit, op) = self.prepare_commit(author, ts, txs)?;
            return Ok((vec![commit], op));
        };
        if txs.is_empty() {
            return Err(CdvcsError::NoTransactions);
        }
        let (commit, op) = encode_commit(vec![merge.id], author, ts, txs);
        let mut graph = merge_op.graph;
        graph.extend(op.graph);
        Ok((
            vec![merge, commit],
            CdvcsOp {
                graph,
                heads: op.heads,
            },
        ))
    }

    /// Fast-forwards to `at`, a commit of `remote` (e.g. another user's CDVCS), taking the
    /// commits reachable from `at` that are not reachable from our heads. Refused when `at` is
    /// already here (`PullUnnecessary`), `remote` lacks it (`UnknownCommit`), the remote lacks
    /// one of our heads (`NotFastForward`), or `at` does not descend from one of our heads
    /// (`WouldConflict`). Costs O(pulled commits + frontier), not O(graph).
    pub fn pull(&mut self, remote: &Cdvcs, at: Id) -> Result<CdvcsOp, CdvcsError> {
        if self.contains(&at) {
            return Err(CdvcsError::PullUnnecessary { at });
        }
        if !remote.contains(&at) {
            return Err(CdvcsError::UnknownCommit { id: at });
        }
        for head in &self.heads {
            if !remote.contains(head) {
                return Err(CdvcsError::NotFastForward { head: *head, at });
            }
            if !remote.is_ancestor(head, &at) {
                return Err(CdvcsError::WouldConflict { head: *head, at });
            }
        }
        let ours: Vec<Id> = self.heads.iter().copied().collect();
        let new = remote.commits_between(&ours, &[at])?;
        let new: Vec<Id> = new.into_iter().filter(|id| !self.contains(id)).collect();
        let mut op = remote.op_for(&new);
        op.heads = vec![at];
        self.downstream(&op)?;
        Ok(op)
    }
}

/// The op that adds an encoded merge as the only new head.
fn encode_merge(encoded: EncodedCommit) -> (EncodedCommit, CdvcsOp) {
    let op = CdvcsOp {
        graph: vec![(encoded.id, encoded.commit.parents.clone())],
        heads: vec![encoded.id],
    };
    (encoded, op)
}

/// Encodes a new commit and the op that adds it as the only new head.
fn encode_commit(
    parents: Vec<Id>,
    author: &str,
    ts: i64,
    transactions: Vec<Transaction>,
) -> (EncodedCommit, CdvcsOp) {
    let encoded = Commit {
        parents: parents.clone(),
        transactions,
        author: author.to_string(),
        ts,
    }
    .encode();
    let op = CdvcsOp {
        graph: vec![(encoded.id, parents)],
        heads: vec![encoded.id],
    };
    (encoded, op)
}
