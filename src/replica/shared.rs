//! [`ReplicaShared`]: the part of a replica that outlives its incarnations (state, watchers,
//! the slot of the running actor), and what it announces.

use std::sync::{Arc, RwLock};

use actix::prelude::*;
use replikativ_actors::Slot;
use tokio::sync::broadcast;

use super::ReplicaActor;
use crate::crdt::{Cdvcs, CrdtKey};
use crate::id::Id;

/// How many change notices a slow watcher may lag behind before it must resynchronise. The
/// channel's buffer is allocated at the first watcher (about 120 KiB): most replicas of a
/// node holding many have none.
const CHANGE_BUFFER: usize = 1024;

/// What a replica tells its watchers after a durable change.
#[derive(Clone, Debug)]
pub struct ReplicaChanged {
    /// Which CDVCS.
    pub key: CrdtKey,
    /// Commits newly added, parents before children.
    pub added: Arc<Vec<Id>>,
    /// The heads after the change.
    pub heads: Vec<Id>,
    /// The connection the change came from, so it is not echoed back (None = local).
    pub origin: Option<u64>,
}

/// Something every connection of this node may need to react to (the node's event bus,
/// fed by the replicas and the registry).
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A replica changed durably (or watchers lagged).
    Replica(Watched),
    /// A replica was created: subscribe to it on every connection.
    Created(CrdtKey),
}

/// One item of [`ReplicaShared::watch_stream`].
#[derive(Clone, Debug)]
pub enum Watched {
    /// A durable change.
    Changed(ReplicaChanged),
    /// This many notices were missed; re-read the state.
    Lagged(u64),
}

/// The part of a replica that outlives its incarnations.
pub struct ReplicaShared {
    /// Which CDVCS.
    pub key: CrdtKey,
    /// The current actor incarnation, filled by the runtime when one starts.
    slot: Slot<ReplicaActor>,
    state: RwLock<Arc<RwLock<Cdvcs>>>,
    changes: std::sync::OnceLock<broadcast::Sender<ReplicaChanged>>,
    bus: broadcast::Sender<NodeEvent>,
}

impl ReplicaShared {
    /// A shared handle for `key` with an empty (root-only) state until the actor loads it.
    /// Changes are also announced on the node's `bus`.
    pub fn new(key: CrdtKey, bus: broadcast::Sender<NodeEvent>) -> Arc<ReplicaShared> {
        let (state, _root) = Cdvcs::new(&key);
        Arc::new(ReplicaShared {
            key,
            slot: Slot::new(),
            state: RwLock::new(Arc::new(RwLock::new(state))),
            changes: std::sync::OnceLock::new(),
            bus,
        })
    }

    /// The running actor incarnation, if any (one lock read, no supervisor round trip).
    pub fn actor(&self) -> Option<Addr<ReplicaActor>> {
        self.slot.get()
    }

    /// Where the runtime publishes this replica's incarnations.
    pub fn slot(&self) -> Slot<ReplicaActor> {
        self.slot.clone()
    }

    /// The watchers' channel, made by the first watcher.
    fn changes(&self) -> &broadcast::Sender<ReplicaChanged> {
        self.changes
            .get_or_init(|| broadcast::channel(CHANGE_BUFFER).0)
    }

    pub(super) fn announce(&self, change: ReplicaChanged) {
        // Without a watcher yet there is no one to tell.
        if let Some(changes) = self.changes.get() {
            let _ = changes.send(change.clone());
        }
        let _ = self.bus.send(NodeEvent::Replica(Watched::Changed(change)));
    }

    /// The current state (read it, never write it: only the actor does).
    pub fn state(&self) -> Arc<RwLock<Cdvcs>> {
        match self.state.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current heads.
    pub fn heads(&self) -> Vec<Id> {
        let state = self.state();
        let guard = match state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        guard.heads().iter().copied().collect()
    }

    /// Watch durable changes.
    pub fn watch(&self) -> broadcast::Receiver<ReplicaChanged> {
        self.changes().subscribe()
    }

    /// Durable changes as a stream (for `ctx.add_stream`); a lagging watcher gets
    /// [`Watched::Lagged`] and must resynchronise from the state.
    pub fn watch_stream(&self) -> impl futures_util::Stream<Item = Watched> + 'static {
        futures_util::stream::unfold(self.changes().subscribe(), |mut rx| async move {
            match rx.recv().await {
                Ok(change) => Some((Watched::Changed(change), rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((Watched::Lagged(n), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }

    /// Publishes a freshly loaded state and tells watchers to re-read it.
    pub(super) fn install(&self, state: Cdvcs) {
        let heads: Vec<Id> = state.heads().iter().copied().collect();
        let fresh = Arc::new(RwLock::new(state));
        match self.state.write() {
            Ok(mut g) => *g = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        self.announce(ReplicaChanged {
            key: self.key.clone(),
            added: Arc::new(Vec::new()),
            heads,
            origin: None,
        });
    }
}
