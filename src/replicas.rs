//! The replica registry: one [`ReplicaActor`] per CDVCS this node holds, started on demand
//! (on first use, not at node start: a node holding 10^4 CDVCSs starts in the time of one)
//! under the `replicas` pool, and the node's event bus (durable changes, new replicas) that
//! connections follow. What a peer is offered is read from the store for replicas not started.
//!
//! Reaching a running replica is one lock read through its [`Slot`](replikativ_actors::Slot)
//! (filled by the runtime at each incarnation's start); the pool is asked only to start one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use replikativ_actors::{ChildSpec, Pool, PoolHandle, Restart, SupervisionError, SupervisorSlot};
use tokio::sync::broadcast;

use crate::crdt::CrdtKey;
use crate::id::Id;
pub use crate::replica::NodeEvent;
use crate::replica::{ReplicaActor, ReplicaShared, Watched};
use crate::store::{StoreError, StoreHandle};

/// Graph entries a CDVCS's status counts each time; beyond, it caches the count.
pub const COUNTED_EACH_TIME: u64 = 64;
/// How many node events a slow watcher may lag behind before it resynchronises.
const EVENT_BUFFER: usize = 4096;
/// How long starting a replica waits for the pool while its parent restarts it (after a
/// store failure the node's rest-for-one root restarts the store, then the pool).
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Why a replica could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The node has not finished starting or is stopping.
    #[error("the node is not running")]
    NotRunning,
    /// The replica's actor could not be started.
    #[error("cannot start the replica of {key}")]
    Start {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: Box<SupervisionError>,
    },
}

/// The replicas this node holds.
pub struct Replicas {
    store: StoreHandle,
    bus: broadcast::Sender<NodeEvent>,
    shared: Mutex<HashMap<CrdtKey, Arc<ReplicaShared>>>,
    pool: Pool<ReplicaActor, Arc<ReplicaShared>>,
    /// The running incarnation of the pool, filled by the runtime as it starts.
    running: SupervisorSlot,
    start_lock: tokio::sync::Mutex<()>,
}

impl Replicas {
    /// An empty registry over `store`; its replicas restart with `backoff` and sign this
    /// node's commits with `signer` (unless `unsigned_author`: the benchmark baseline, see
    /// `NodeBuilder::unsigned_commits_for_benchmark`).
    pub(crate) fn new(
        store: StoreHandle,
        backoff: replikativ_actors::BackoffPolicy,
        signer: crate::identity::Keypair,
        unsigned_author: Option<String>,
    ) -> Replicas {
        let loader = store.clone();
        let pool = Pool::new("replicas", move |shared: Arc<ReplicaShared>| {
            ReplicaActor::load(shared, loader.clone(), signer.clone())
                .map(|actor| actor.unsigned_for_benchmark(unsigned_author.clone()))
        })
        .slots(|shared: &Arc<ReplicaShared>| shared.slot())
        .children(|c| c.restart(Restart::Permanent).backoff(backoff))
        .intensity(10, Duration::from_secs(10));
        Replicas {
            store,
            bus: broadcast::channel(EVENT_BUFFER).0,
            shared: Mutex::new(HashMap::new()),
            pool,
            running: SupervisorSlot::new(),
            start_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The pool the replicas run in, to put under the node's root.
    pub(crate) fn child_spec(&self) -> ChildSpec {
        self.pool.child_spec_in(self.running.clone())
    }

    async fn pool(&self) -> Result<PoolHandle<ReplicaActor, Arc<ReplicaShared>>, RegistryError> {
        let running = self
            .running
            .wait(POOL_WAIT)
            .await
            .ok_or(RegistryError::NotRunning)?;
        Ok(self.pool.handle(running))
    }

    fn child_id(key: &CrdtKey) -> String {
        format!("{}/{}", key.user, key.id)
    }

    /// The replica of `key`, started (and created empty, root only) when absent.
    pub async fn ensure(&self, key: &CrdtKey) -> Result<Arc<ReplicaShared>, RegistryError> {
        self.addr(key).await?;
        self.get(key).ok_or(RegistryError::NotRunning)
    }

    /// The shared state of `key`, if this node holds it.
    pub fn get(&self, key: &CrdtKey) -> Option<Arc<ReplicaShared>> {
        self.shared.lock().ok()?.get(key).cloned()
    }

    /// The shared state of `key`, registered now if absent (e.g. for a realizer that must
    /// watch a replica before it starts).
    pub(crate) fn adopt(&self, key: &CrdtKey) -> Arc<ReplicaShared> {
        let mut map = match self.shared.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let bus = self.bus.clone();
        map.entry(key.clone())
            .or_insert_with(|| ReplicaShared::new(key.clone(), bus))
            .clone()
    }

    /// The current replica actor of `key`, starting it when it is not running.
    pub async fn addr(&self, key: &CrdtKey) -> Result<Addr<ReplicaActor>, RegistryError> {
        if let Some(addr) = self.get(key).and_then(|s| s.actor()) {
            return Ok(addr);
        }
        let _guard = self.start_lock.lock().await;
        if let Some(addr) = self.get(key).and_then(|s| s.actor()) {
            return Ok(addr);
        }
        let pool = self.pool().await?;
        let id = Self::child_id(key);
        // Starting a replica the store holds creates nothing: no `Created` event.
        let stored = self.stored_heads(key).ok().flatten().is_some();
        let (shared, created) = {
            let mut map = self.shared.lock().map_err(|_| RegistryError::NotRunning)?;
            match map.get(key) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = ReplicaShared::new(key.clone(), self.bus.clone());
                    map.insert(key.clone(), s.clone());
                    (s, !stored)
                }
            }
        };
        // A child of that id may be registered but stopped (e.g. restarting): replace it.
        let _ = pool.terminate_child(&id).await;
        let addr = pool
            .start_child(id, shared)
            .await
            .map_err(|source| RegistryError::Start {
                key: key.clone(),
                source: Box::new(source),
            })?;
        if created {
            let _ = self.bus.send(NodeEvent::Created(key.clone()));
        }
        Ok(addr)
    }

    /// Creates those of `keys` this node does not hold (a peer subscribed to them): their
    /// roots in one durable write (one group commit, not one fsync each), then a `Created`
    /// event for each. Their replicas start on first use. Keys held (or being started) are
    /// left alone.
    pub async fn create_all(&self, keys: &[CrdtKey]) -> Result<(), StoreError> {
        // No replica starts meanwhile: one that did would create its root and announce it too.
        let _guard = self.start_lock.lock().await;
        let mut batch = crate::store::WriteBatch::new();
        let mut new = std::collections::BTreeSet::new();
        for key in keys {
            if self.get(key).is_none() && self.stored_heads(key)?.is_none() && new.insert(key) {
                batch.merge(crate::store::cdvcs::create(key).1);
            }
        }
        if new.is_empty() {
            return Ok(());
        }
        self.store.write(batch).await?;
        for key in new {
            let _ = self.bus.send(NodeEvent::Created(key.clone()));
        }
        Ok(())
    }

    /// Every CDVCS this node holds (started or only in the store).
    pub fn keys(&self) -> Result<Vec<CrdtKey>, StoreError> {
        let mut keys: std::collections::BTreeSet<CrdtKey> = match self.shared.lock() {
            Ok(m) => m.keys().cloned().collect(),
            Err(p) => p.into_inner().keys().cloned().collect(),
        };
        keys.extend(self.store.store().list_crdts()?);
        Ok(keys.into_iter().collect())
    }

    /// Whether the replica of `key` is running.
    pub fn running(&self, key: &CrdtKey) -> bool {
        self.get(key).is_some_and(|s| s.actor().is_some())
    }

    /// Those of `keys` that the store holds but whose replicas are not running.
    pub fn stopped(&self, keys: &[CrdtKey]) -> Vec<CrdtKey> {
        keys.iter()
            .filter(|k| !self.running(k) && matches!(self.stored_heads(k), Ok(Some(_))))
            .cloned()
            .collect()
    }

    /// Starts the replicas of `keys` (see [`ensure`](Self::ensure)).
    pub async fn ensure_all(&self, keys: &[CrdtKey]) -> Result<(), RegistryError> {
        for key in keys {
            self.addr(key).await?;
        }
        Ok(())
    }

    /// The heads of `key` as stored (`None` when the store does not hold it; a damaged
    /// record too: its replica reports the damage when it starts).
    fn stored_heads(&self, key: &CrdtKey) -> Result<Option<Vec<Id>>, StoreError> {
        let raw = self
            .store
            .store()
            .get_state(&crate::store::keys::heads(&key.user, &key.id))?;
        Ok(raw.and_then(|r| rmp_serde::from_slice(&r).ok()))
    }

    /// Every CDVCS this node holds with its heads: a running replica's in memory, the others'
    /// as stored (what a connection offers its peer).
    pub fn offer(&self) -> Result<Vec<(CrdtKey, Vec<Id>)>, StoreError> {
        let mut out = Vec::new();
        for key in self.keys()? {
            let running = self.get(&key).filter(|s| s.actor().is_some());
            let heads = match running {
                Some(s) => Some(s.heads()),
                None => self.stored_heads(&key)?,
            };
            if let Some(heads) = heads {
                out.push((key, heads));
            }
        }
        Ok(out)
    }

    /// The heads of `key` and its commits (the root not counted), for operators: a running
    /// replica's from memory, another's from the store without starting it: its count cached
    /// with the heads it was made at (one read), else its graph entries counted once and the
    /// count cached when the history is longer than [`COUNTED_EACH_TIME`] (a scrape of many
    /// CDVCSs not started costs O(1) each once counted; a CDVCS that changed is counted again); `None` when this node does not hold it.
    pub fn summary(&self, key: &CrdtKey) -> Result<Option<(Vec<Id>, u64)>, StoreError> {
        let running = self
            .get(key)
            .filter(|s| s.actor().is_some())
            .map(|s| s.state());
        // What a running replica's state says: every commit when it holds its whole graph;
        // else its heads, with the count read from the store below.
        let mut state_heads = None;
        if let Some(state) = &running {
            let guard = match state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let mut heads: Vec<Id> = guard.heads().iter().copied().collect();
            if !guard.is_backed() {
                return Ok(Some((heads, guard.len().saturating_sub(1) as u64)));
            }
            heads.sort();
            state_heads = Some(heads);
        }
        let heads = match state_heads {
            Some(heads) => heads,
            None => match self.stored_heads(key)? {
                Some(mut heads) => {
                    heads.sort();
                    heads
                }
                None => return Ok(None),
            },
        };
        // The ancestors of the heads are every commit of the CDVCS: same heads, same count.
        let record = crate::store::keys::commit_count(&key.user, &key.id);
        let cached = match self.store.store().get_state(&record)? {
            Some(raw) => rmp_serde::from_slice::<(Vec<Id>, u64)>(&raw).ok(),
            None => None,
        };
        if let Some((at, count)) = &cached
            && *at == heads
        {
            return Ok(Some((heads, *count)));
        }
        // A running replica adds what its heads gained since the cached count (heads only
        // grow, so the cached ones are ancestors of these): a walk over the new commits,
        // bounded by generation, not over the history.
        let grown = match (&cached, &running) {
            (Some((at, count)), Some(state)) => {
                let guard = match state.read() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                guard
                    .commits_between(at, &heads)
                    .ok()
                    .map(|new| count + new.len() as u64)
            }
            _ => None,
        };
        let count = match grown {
            Some(count) => count,
            None => {
                let mut entries = 0u64;
                let prefix = crate::store::keys::graph_prefix(&key.user, &key.id);
                self.store.store().visit_state(&prefix, |_, _| {
                    entries += 1;
                    std::ops::ControlFlow::Continue(())
                })?;
                entries.saturating_sub(1)
            }
        };
        // A short history is counted again rather than cached (no write per scrape).
        if count + 1 > COUNTED_EACH_TIME
            && let Ok(bytes) = rmp_serde::to_vec(&(&heads, count))
        {
            let mut batch = crate::store::WriteBatch::new();
            batch.put_state(record, bytes);
            self.store.write_detached(batch);
        }
        Ok(Some((heads, count)))
    }

    /// Node events as a stream (for `ctx.add_stream`); a lagging follower gets
    /// [`Watched::Lagged`] and must resynchronise.
    pub fn events_stream(&self) -> impl futures_util::Stream<Item = NodeEvent> + 'static {
        futures_util::stream::unfold(self.bus.subscribe(), |mut rx| async move {
            match rx.recv().await {
                Ok(ev) => Some((ev, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Some((NodeEvent::Replica(Watched::Lagged(n)), rx))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }
}
