//! [`GroupCommitter`]: one writer thread that turns a queue of batches into few transactions.
//!
//! Invariant: a caller's answer is sent only after the transaction that carried its batch has
//! committed durably (or failed, in which case nothing of that transaction was written). While
//! one transaction is being written, new requests queue; the next transaction takes all of
//! them (up to [`MAX_GROUP_BYTES`]), so durable throughput is bounded by fsyncs per group, not
//! per caller.

use std::future::Future;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use crate::store::batch::WriteBatch;
use crate::store::error::StoreError;
use crate::store::open::Store;

/// A group stops taking queued batches once it holds this many bytes (bounds transaction size).
pub const MAX_GROUP_BYTES: usize = 16 * 1024 * 1024;

struct Request {
    batch: WriteBatch,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Durations of group commits, in seconds.
pub type Histogram = prometheus_client::metrics::histogram::Histogram;

/// The buckets of [`Histogram`]s of commit durations: 0.5 ms to ~4 s.
pub fn commit_seconds() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 14,
    ))
}

/// A handle on a writer thread that group-commits batches into one [`Store`]. Clones share
/// the thread.
///
/// Dropping the last handle lets the thread finish the queued batches and exit; it is never
/// joined from the dropping thread (which may be an actix arbiter).
#[derive(Debug, Clone)]
pub struct GroupCommitter {
    queue: mpsc::Sender<Request>,
}

impl GroupCommitter {
    /// Starts the writer thread over `store`.
    pub fn start(store: Store) -> Result<GroupCommitter, StoreError> {
        GroupCommitter::start_timed(store, None)
    }

    /// Like [`start`](Self::start), observing each durable group commit's duration in
    /// `seconds` (the node's `replikativ_store_commit_seconds`).
    pub fn start_timed(
        store: Store,
        seconds: Option<Histogram>,
    ) -> Result<GroupCommitter, StoreError> {
        let (queue, rx) = mpsc::channel::<Request>();
        thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(store, rx, seconds))
            .map_err(|e| StoreError::Io {
                path: "store-writer thread".into(),
                source: Arc::new(e),
            })?;
        Ok(GroupCommitter { queue })
    }

    /// Queues `batch` now (so submissions keep their order) and returns a future that resolves
    /// once it is durable, or with the error of the transaction that carried it.
    pub fn submit(
        &self,
        batch: WriteBatch,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let queued = self.queue.send(Request { batch, reply }).is_ok();
        async move {
            if !queued {
                return Err(StoreError::WriterStopped);
            }
            answer.await.unwrap_or(Err(StoreError::WriterStopped))
        }
    }

    /// Like [`GroupCommitter::submit`], blocking the calling (non-async) thread until durable.
    pub fn write_blocking(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Request { batch, reply })
            .map_err(|_| StoreError::WriterStopped)?;
        answer
            .blocking_recv()
            .unwrap_or(Err(StoreError::WriterStopped))
    }
}

/// The writer loop: block for one request, drain whatever else is queued, commit, answer all.
/// A panic inside redb ends the thread; the dropped reply senders answer `WriterStopped`.
fn run(store: Store, rx: mpsc::Receiver<Request>, seconds: Option<Histogram>) {
    while let Ok(first) = rx.recv() {
        let mut bytes = first.batch.byte_size();
        let mut group = vec![first];
        while bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(next) => {
                    bytes += next.batch.byte_size();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let batches: Vec<&WriteBatch> = group.iter().map(|r| &r.batch).collect();
        let started = std::time::Instant::now();
        let result = store.write_group(&batches);
        if let Some(h) = &seconds {
            h.observe(started.elapsed().as_secs_f64());
        }
        if let Err(e) = &result {
            tracing::warn!(error = %e, batches = group.len(), "group commit failed");
        }
        for request in group {
            // A caller that gave up waiting is no reason to stop writing for the others.
            let _ = request.reply.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_writes_from_many_threads_all_land() {
        let store = Store::in_memory().expect("store");
        let committer = Arc::new(GroupCommitter::start(store.clone()).expect("start"));
        let ids: Vec<_> = (0..8u32)
            .map(|t| {
                let committer = committer.clone();
                thread::spawn(move || {
                    (0..20u32)
                        .map(|i| {
                            let mut b = WriteBatch::new();
                            let id = b.put_value(format!("{t}/{i}").into_bytes());
                            committer.write_blocking(b).expect("write");
                            id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .flat_map(|h| h.join().expect("join"))
            .collect();
        for id in ids {
            assert!(store.has_value(&id).expect("read"));
        }
    }
}
