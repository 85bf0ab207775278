//! [`StoreHandle`]: what an actor that writes holds — the store for reads on its own thread,
//! and the current store-writer thread (group commit) for durable writes.
//!
//! A write goes straight to the writer thread the current [`StoreActor`] incarnation owns: the
//! incarnation publishes its writer here when it is made, and withdraws it when it fails or
//! stops. The actor stays the supervised owner (a failed write stops it; its successor starts
//! a fresh writer thread), but it is no relay on the way to the disk.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use replikativ_actors::Slot;

use crate::store::actor::{StoreActor, WriteFailed};
use crate::store::batch::WriteBatch;
use crate::store::error::StoreError;
use crate::store::group_commit::GroupCommitter;
use crate::store::open::Store;

/// How long a writer waits for a store actor to be running (a restart in progress). Bounded:
/// a writer waiting inside a transaction while its supervisor stops it must not wait forever.
pub const STORE_WAIT: Duration = Duration::from_secs(1);

/// The writer thread of the current store actor incarnation, by generation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Published {
    current: Arc<Mutex<Option<(u64, GroupCommitter)>>>,
    /// The last generation handed out.
    generations: Arc<std::sync::atomic::AtomicU64>,
}

impl Published {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(u64, GroupCommitter)>> {
        // Only whole values are stored under this lock: poisoning leaves nothing half-written.
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes `committer` under a fresh generation, which it returns.
    fn publish(&self, committer: GroupCommitter) -> u64 {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        *self.lock() = Some((generation, committer));
        generation
    }

    /// Withdraws the writer of `generation`, if it is still the published one.
    pub(crate) fn withdraw(&self, generation: u64) {
        let mut current = self.lock();
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }

    fn get(&self) -> Option<(u64, GroupCommitter)> {
        self.lock().clone()
    }
}

/// Reads on the caller's thread; writes to the current writer thread (group commit).
/// Cheap to clone; resolving the writer is one lock read, no actor or supervisor round trip.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    store: Store,
    actor: Slot<StoreActor>,
    writer: Published,
    /// Durations of the durable group commits of this handle's writers.
    commit_seconds: crate::store::group_commit::Histogram,
    /// Whether writers started from now on time their commits.
    timed: Arc<std::sync::atomic::AtomicBool>,
}

impl StoreHandle {
    /// A handle over `store` whose writes go to the writer of the store actors made by
    /// [`store_actor`](Self::store_actor) and published in [`slot`](Self::slot).
    pub fn new(store: Store) -> StoreHandle {
        StoreHandle {
            store,
            actor: Slot::new(),
            writer: Published::default(),
            commit_seconds: crate::store::group_commit::commit_seconds(),
            timed: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// The slot the store actor's incarnations are published in (give it to the store
    /// actor's child spec).
    pub fn slot(&self) -> Slot<StoreActor> {
        self.actor.clone()
    }

    /// A new store actor incarnation (the child spec's factory): starts its writer thread and
    /// publishes it to every clone of this handle.
    pub fn store_actor(&self) -> Result<StoreActor, StoreError> {
        let timed = self.timed.load(std::sync::atomic::Ordering::Relaxed);
        let committer = GroupCommitter::start_timed(
            self.store.clone(),
            timed.then(|| self.commit_seconds.clone()),
        )?;
        let generation = self.writer.publish(committer.clone());
        Ok(StoreActor::publishing(
            self.store.clone(),
            committer,
            self.writer.clone(),
            generation,
        ))
    }

    /// Whether writers started from now on time their commits (default on).
    pub fn time_commits(&self, on: bool) {
        self.timed.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Durations of the durable group commits of this handle's writers (seconds).
    pub fn commit_seconds(&self) -> &crate::store::group_commit::Histogram {
        &self.commit_seconds
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes `batch` durably through the current writer thread; answers once it is durable.
    /// `WriterStopped` when no store actor runs within [`STORE_WAIT`]. A failed write stops
    /// the incarnation that owns the writer, so its supervisor restarts it.
    pub async fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let (generation, committer) = match self.writer.get() {
            Some(current) => current,
            None => {
                // Between incarnations: wait for the next one, which publishes its writer
                // before it is put in the slot.
                self.actor
                    .wait(STORE_WAIT)
                    .await
                    .ok_or(StoreError::WriterStopped)?;
                self.writer.get().ok_or(StoreError::WriterStopped)?
            }
        };
        let result = committer.submit(batch).await;
        if let Err(error) = &result
            && let Some(actor) = self.actor.get()
        {
            actor.do_send(WriteFailed {
                generation,
                error: error.clone(),
            });
        }
        result
    }

    /// Queues `batch` on the current writer thread and returns at once, from any thread (a
    /// cache, not data: dropped when no writer runs, a failure unreported).
    pub fn write_detached(&self, batch: WriteBatch) {
        if let Some((_, committer)) = self.writer.get() {
            drop(committer.submit(batch));
        }
    }

    /// Writes `batch` without waiting for it (hints, not data); a failure is logged.
    pub fn write_in_background(&self, batch: WriteBatch) {
        let me = self.clone();
        actix_rt::spawn(async move {
            if let Err(e) = me.write(batch).await {
                tracing::warn!("background write failed: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::actor::GetState;
    use replikativ_actors::{BackoffPolicy, ChildSpec, Supervisor};

    /// A failure report stops only the incarnation whose writer failed: a late report about a
    /// predecessor must not stop its healthy successor; writes go on through the successor.
    #[actix_rt::test]
    async fn a_failed_write_stops_its_own_incarnation_and_no_other() {
        let handle = StoreHandle::new(Store::in_memory().expect("store"));
        let factory = handle.clone();
        let sup = Supervisor::new("test")
            .backoff(BackoffPolicy::none())
            .child(ChildSpec::new_in("store", handle.slot(), move || {
                factory.store_actor()
            }))
            .start()
            .await
            .expect("starts");
        let first = handle.slot().get().expect("store actor runs");
        let (generation, _) = handle.writer.get().expect("published");
        let failure = |generation| WriteFailed {
            generation,
            error: StoreError::WriterStopped,
        };
        first.do_send(failure(generation + 1));
        // The mailbox is FIFO: once this answers, the report above was handled.
        first
            .send(GetState(b"a".to_vec()))
            .await
            .expect("the incarnation still answers")
            .expect("read");
        assert_eq!(
            handle.slot().get(),
            Some(first.clone()),
            "a stale report is ignored"
        );

        first.do_send(failure(generation));
        let second = handle
            .slot()
            .wait_next(&first, Duration::from_secs(10))
            .await
            .expect("the failed incarnation is replaced");
        let (next, _) = handle
            .writer
            .get()
            .expect("the successor published its writer");
        assert!(next > generation);
        // A late report about the first writer reaches the successor (the handle reports to
        // whatever incarnation runs): it must keep running.
        second.do_send(failure(generation));
        second
            .send(GetState(b"b".to_vec()))
            .await
            .expect("the successor still answers")
            .expect("read");
        assert_eq!(
            handle.slot().get(),
            Some(second),
            "a late report is ignored"
        );
        let mut batch = WriteBatch::new();
        batch.put_state(b"b".to_vec(), b"2".to_vec());
        handle
            .write(batch)
            .await
            .expect("written through the successor");
        assert_eq!(
            handle.store().get_state(b"b").expect("read"),
            Some(b"2".to_vec())
        );
        sup.shutdown().await;
        assert!(
            handle.writer.get().is_none(),
            "a stopped incarnation withdraws"
        );
    }
}
