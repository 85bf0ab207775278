//! An in-memory sink: every applied op as a decoded value, for tests and embedding.
//!
//! Clones share one state, so a test keeps a clone and inspects what a realizer applied.
//! Failures can be injected (transient, deterministic, panic) and commits poisoned, to drive a
//! realizer's retry, park and restart paths.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;

use super::params::decode_params;
use super::sink::{HandlerError, Sink, SinkError, SkippedCommit, TxParams, now_ms};
use crate::id::Id;

/// One op applied by a [`MemorySink`].
#[derive(Clone, Debug, PartialEq)]
pub struct AppliedOp {
    /// The commit it belongs to.
    pub commit: Id,
    /// Its index in the commit.
    pub tx: usize,
    /// The op name.
    pub op: String,
    /// The decoded params.
    pub params: Value,
}

/// A failure the next `apply_commit` call returns (or raises) instead of applying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedFailure {
    /// A [`SinkError::Transient`].
    Transient,
    /// A deterministic handler error.
    Deterministic,
    /// A panic inside `apply_commit`.
    Panic,
}

/// What a [`MemorySink`] holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemorySnapshot {
    /// The applied set (including skipped commits).
    pub applied: HashSet<Id>,
    /// Every op applied, in order.
    pub ops: Vec<AppliedOp>,
    /// Operator skips.
    pub skipped: Vec<SkippedCommit>,
}

#[derive(Debug, Default)]
struct State {
    data: MemorySnapshot,
    failures: VecDeque<InjectedFailure>,
    poisoned: HashSet<Id>,
}

/// An in-memory sink; clones share their state.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    state: Arc<Mutex<State>>,
    accepted: Option<Arc<HashSet<String>>>,
}

impl MemorySink {
    /// A sink that accepts every op.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// A sink that accepts only these ops; others are [`SinkError::UnknownOp`].
    pub fn accepting(ops: &[&str]) -> MemorySink {
        MemorySink {
            state: Arc::default(),
            accepted: Some(Arc::new(ops.iter().map(|s| s.to_string()).collect())),
        }
    }

    /// Makes the next `apply_commit` fail this way (queued, one per call).
    pub fn fail_next(&self, failure: InjectedFailure) {
        self.lock().failures.push_back(failure);
    }

    /// Makes every attempt to apply `commit` fail deterministically (a poison record).
    pub fn poison(&self, commit: Id) {
        self.lock().poisoned.insert(commit);
    }

    /// A copy of what the sink holds.
    pub fn snapshot(&self) -> MemorySnapshot {
        self.lock().data.clone()
    }

    // A panic injected by this sink happens outside the lock, so it is never poisoned by
    // our own doing; if a caller's panic poisoned it, the data is still consistent.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink for MemorySink {
    fn applied(&mut self) -> Result<HashSet<Id>, SinkError> {
        Ok(self.lock().data.applied.clone())
    }

    fn apply_commit(&mut self, commit: Id, txs: &[TxParams]) -> Result<(), SinkError> {
        let injected = {
            let mut state = self.lock();
            if state.data.applied.contains(&commit) {
                return Ok(());
            }
            if state.poisoned.contains(&commit) {
                Some(InjectedFailure::Deterministic)
            } else {
                state.failures.pop_front()
            }
        };
        let first_op = txs.first().map(|(op, _)| op.clone()).unwrap_or_default();
        match injected {
            None => {}
            Some(InjectedFailure::Transient) => {
                return Err(SinkError::Transient {
                    reason: format!("injected failure at commit {commit}"),
                });
            }
            Some(InjectedFailure::Deterministic) => {
                return Err(SinkError::Handler {
                    commit,
                    tx: 0,
                    op: first_op,
                    source: Box::new(HandlerError::Invalid {
                        reason: "poison record (injected)".into(),
                    }),
                });
            }
            Some(InjectedFailure::Panic) => panic!("injected panic at commit {commit}"),
        }
        // Decode and check everything before changing anything: all or nothing.
        let mut ops = Vec::with_capacity(txs.len());
        for (i, (op, bytes)) in txs.iter().enumerate() {
            if let Some(accepted) = &self.accepted
                && !accepted.contains(op)
            {
                return Err(SinkError::UnknownOp {
                    commit,
                    tx: i,
                    op: op.clone(),
                });
            }
            let params = decode_params(bytes).map_err(|source| SinkError::BadParams {
                commit,
                tx: i,
                op: op.clone(),
                source,
            })?;
            ops.push(AppliedOp {
                commit,
                tx: i,
                op: op.clone(),
                params,
            });
        }
        let mut state = self.lock();
        if state.data.applied.insert(commit) {
            state.data.ops.extend(ops);
        }
        Ok(())
    }

    fn record_skip(&mut self, commit: Id, reason: &str) -> Result<(), SinkError> {
        let mut state = self.lock();
        if state.data.applied.insert(commit) {
            state.data.skipped.push(SkippedCommit {
                commit,
                reason: reason.to_string(),
                at_ms: now_ms(),
            });
        }
        Ok(())
    }

    fn skipped(&mut self) -> Result<Vec<SkippedCommit>, SinkError> {
        Ok(self.lock().data.skipped.clone())
    }
}
