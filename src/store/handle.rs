//! [`StoreHandle`]: what an actor that writes holds — the store for reads on its own thread,
//! and the slot of the current [`StoreActor`] incarnation for durable writes.

use std::time::Duration;

use replikativ_actors::Slot;

use crate::store::actor::{StoreActor, Write};
use crate::store::batch::WriteBatch;
use crate::store::error::StoreError;
use crate::store::open::Store;

/// How long a writer waits for a store actor to be running (a restart in progress). Bounded:
/// a writer waiting inside a transaction while its supervisor stops it must not wait forever.
pub const STORE_WAIT: Duration = Duration::from_secs(1);

/// Reads on the caller's thread; writes through the current store actor (group commit).
/// Cheap to clone; resolving the store actor is one lock read, no supervisor round trip.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    store: Store,
    actor: Slot<StoreActor>,
}

impl StoreHandle {
    /// A handle over `store` whose writes go to the actor published in the returned slot
    /// (give [`slot`](Self::slot) to the store actor's child spec).
    pub fn new(store: Store) -> StoreHandle {
        StoreHandle {
            store,
            actor: Slot::new(),
        }
    }

    /// The slot the store actor's incarnations are published in.
    pub fn slot(&self) -> Slot<StoreActor> {
        self.actor.clone()
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes `batch` durably through the current store actor; answers once it is durable.
    /// `WriterStopped` when no store actor runs within [`STORE_WAIT`].
    pub async fn write(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let actor = self
            .actor
            .wait(STORE_WAIT)
            .await
            .ok_or(StoreError::WriterStopped)?;
        actor
            .send(Write(batch))
            .await
            .map_err(|_| StoreError::WriterStopped)?
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
