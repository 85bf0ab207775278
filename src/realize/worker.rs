//! A sink on its own thread: SQLite and files block, actix arbiters must not.
//!
//! The worker owns the sink; requests go over a channel and answers come back on oneshots.
//! If the thread dies (a panic escaping the sink), every pending and later request fails with
//! [`WorkerGone`], which makes the realizer fail and its supervisor restart it with a fresh
//! worker and a reopened sink.

use std::collections::HashSet;
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::sink::{Sink, SinkError, TxParams};
use crate::id::Id;

/// The worker thread is gone.
#[derive(Debug, thiserror::Error)]
#[error("the sink's worker thread is gone")]
pub struct WorkerGone;

enum Request {
    Applied(oneshot::Sender<Result<HashSet<Id>, SinkError>>),
    Apply(
        Id,
        String,
        Vec<TxParams>,
        oneshot::Sender<Result<(), SinkError>>,
    ),
}

/// A handle to a sink running on its own thread.
pub struct SinkWorker {
    tx: mpsc::Sender<Request>,
}

impl SinkWorker {
    /// Starts a thread that owns the sink `open` builds (opened on that thread); answers once
    /// the sink is open, or with the reason it could not be opened.
    pub fn start<F>(name: &str, open: F) -> Result<SinkWorker, SinkError>
    where
        F: FnOnce() -> Result<Box<dyn Sink>, SinkError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Request>();
        let (opened_tx, opened_rx) = mpsc::channel::<Result<(), SinkError>>();
        std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                let mut sink = match open() {
                    Ok(s) => {
                        let _ = opened_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                for req in rx.iter() {
                    match req {
                        Request::Applied(r) => drop(r.send(sink.applied())),
                        Request::Apply(id, author, txs, r) => {
                            drop(r.send(sink.apply_commit_by(id, &author, &txs)))
                        }
                    }
                }
            })
            .map_err(|e| SinkError::Transient {
                reason: format!("cannot start the sink thread: {e}"),
            })?;
        match opened_rx.recv() {
            Ok(Ok(())) => Ok(SinkWorker { tx }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SinkError::Transient {
                reason: "the sink thread died while opening the sink".into(),
            }),
        }
    }

    /// The sink's checkpoint.
    pub async fn applied(&self) -> Result<Result<HashSet<Id>, SinkError>, WorkerGone> {
        let (r, answer) = oneshot::channel();
        self.tx.send(Request::Applied(r)).map_err(|_| WorkerGone)?;
        answer.await.map_err(|_| WorkerGone)
    }

    /// Applies one commit by `author` (effects and checkpoint in one sink transaction).
    pub async fn apply(
        &self,
        commit: Id,
        author: String,
        txs: Vec<TxParams>,
    ) -> Result<Result<(), SinkError>, WorkerGone> {
        let (r, answer) = oneshot::channel();
        self.tx
            .send(Request::Apply(commit, author, txs, r))
            .map_err(|_| WorkerGone)?;
        answer.await.map_err(|_| WorkerGone)
    }
}
