//! [`StoreActor`]: the store for actors. Writes are group-committed on a dedicated writer
//! thread; reads run on tokio's blocking pool. Neither ever blocks the actor's arbiter, and a
//! read never waits for a write (redb snapshots).
//!
//! Failure: when a write fails or the writer thread is gone, every caller in the affected group
//! gets the error, and the actor stops itself so its supervisor can restart it; a fresh
//! `StoreActor::new(store.clone())` starts a fresh writer thread over the same [`Store`].

use actix::prelude::*;

use crate::id::Id;
use crate::store::batch::WriteBatch;
use crate::store::error::StoreError;
use crate::store::group_commit::GroupCommitter;
use crate::store::handle::Published;
use crate::store::open::Store;
use crate::store::read::StateRecords;

/// How many messages may wait in the actor's mailbox before senders are held back.
pub const MAILBOX_CAPACITY: usize = 1024;

/// Write a batch; answered once the group transaction carrying it is durable.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct Write(pub WriteBatch);

/// Read values by id (same order; `None` for absent ones), each checked against its id.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<Option<Vec<u8>>>, StoreError>")]
pub struct GetValues(pub Vec<Id>);

/// Read one state record.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<Vec<u8>>, StoreError>")]
pub struct GetState(pub Vec<u8>);

/// Read every state record under a key prefix, in key order.
#[derive(Debug, Message)]
#[rtype(result = "Result<StateRecords, StoreError>")]
pub struct ScanState(pub Vec<u8>);

/// A write through the committer of incarnation `generation` failed: that incarnation stops
/// with the error so its supervisor restarts it with a fresh writer thread. Incarnations with
/// another generation ignore it (a late report must not stop a healthy successor).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct WriteFailed {
    pub generation: u64,
    pub error: StoreError,
}

/// Owns a [`GroupCommitter`] over a [`Store`] handle.
#[derive(Debug)]
pub struct StoreActor {
    store: Store,
    committer: Option<GroupCommitter>,
    failure: Option<StoreError>,
    /// Where this incarnation's committer is published for [`crate::store::StoreHandle`]s,
    /// and under which generation.
    published: Option<(Published, u64)>,
}

impl StoreActor {
    /// An actor over `store`; its writer thread starts when the actor does.
    pub fn new(store: Store) -> StoreActor {
        StoreActor {
            store,
            committer: None,
            failure: None,
            published: None,
        }
    }

    /// An actor whose writer thread is already running and published in `published` as
    /// `generation` (see [`crate::store::StoreHandle::store_actor`]).
    pub(crate) fn publishing(
        store: Store,
        committer: GroupCommitter,
        published: Published,
        generation: u64,
    ) -> StoreActor {
        StoreActor {
            store,
            committer: Some(committer),
            failure: None,
            published: Some((published, generation)),
        }
    }

    /// This incarnation's generation (0 when it publishes nothing).
    fn generation(&self) -> u64 {
        self.published.as_ref().map_or(0, |(_, g)| *g)
    }

    /// Withdraws this incarnation's writer from the handles, if it published one.
    fn withdraw(&self) {
        if let Some((published, generation)) = &self.published {
            published.withdraw(*generation);
        }
    }

    /// The store this actor serves.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Why the actor stopped itself, if it did.
    pub fn failure(&self) -> Option<&StoreError> {
        self.failure.as_ref()
    }

    fn fail(&mut self, error: StoreError, ctx: &mut Context<Self>) {
        tracing::error!(error = %error, store = ?self.store.path(), "store actor stopping");
        self.failure.get_or_insert(error.clone());
        self.committer = None;
        self.withdraw();
        // Exit as Failed with the cause (not a plain stop, which a supervisor reports as a
        // normal exit): supervision events and the restart decision then carry the reason.
        replikativ_actors::fail(ctx, error);
    }
}

impl Actor for StoreActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Many concurrent writers are the point of group commit; let their requests queue.
        ctx.set_mailbox_capacity(MAILBOX_CAPACITY);
        if self.committer.is_some() {
            return;
        }
        match GroupCommitter::start(self.store.clone()) {
            Ok(committer) => self.committer = Some(committer),
            Err(e) => self.fail(e, ctx),
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.withdraw();
    }
}

impl Handler<Write> for StoreActor {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, msg: Write, ctx: &mut Context<Self>) -> Self::Result {
        let Some(committer) = &self.committer else {
            return Box::pin(std::future::ready(Err(StoreError::WriterStopped)));
        };
        let durable = committer.submit(msg.0);
        let me = ctx.address();
        let generation = self.generation();
        // Answer the caller with the real error, then tell the actor to stop (not the other way
        // round: futures owned by a stopping actor are dropped unanswered).
        Box::pin(async move {
            let result = durable.await;
            if let Err(e) = &result {
                me.do_send(WriteFailed {
                    generation,
                    error: e.clone(),
                });
            }
            result
        })
    }
}

impl Handler<WriteFailed> for StoreActor {
    type Result = ();

    fn handle(&mut self, msg: WriteFailed, ctx: &mut Context<Self>) {
        if msg.generation == self.generation() {
            self.fail(msg.error, ctx);
        }
    }
}

/// Runs a read on the blocking pool so the arbiter never waits on redb.
fn blocking_read<T: Send + 'static>(
    op: &'static str,
    read: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> ResponseFuture<Result<T, StoreError>> {
    Box::pin(async move {
        tokio::task::spawn_blocking(read)
            .await
            .unwrap_or(Err(StoreError::TaskFailed { op }))
    })
}

impl Handler<GetValues> for StoreActor {
    type Result = ResponseFuture<Result<Vec<Option<Vec<u8>>>, StoreError>>;

    fn handle(&mut self, msg: GetValues, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        blocking_read("get_values", move || store.get_values(&msg.0))
    }
}

impl Handler<GetState> for StoreActor {
    type Result = ResponseFuture<Result<Option<Vec<u8>>, StoreError>>;

    fn handle(&mut self, msg: GetState, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        blocking_read("get_state", move || store.get_state(&msg.0))
    }
}

impl Handler<ScanState> for StoreActor {
    type Result = ResponseFuture<Result<StateRecords, StoreError>>;

    fn handle(&mut self, msg: ScanState, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        blocking_read("scan_state", move || store.scan_state(&msg.0))
    }
}
