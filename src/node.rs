//! `Node`: assembles the supervision tree and hands out the embedding API.
//!
//! ```text
//! node (rest_for_one, 10 restarts / 10 s)
//! ├── store        StoreActor (group commit)                       permanent
//! ├── replicas     pool of ReplicaActor, one per (user, crdt-id)    permanent children
//! ├── peers (one_for_one)
//! │   ├── listener     websocket server on --listen                 permanent
//! │   ├── connections  pool of accepted ConnectionActors            temporary children
//! │   └── connect-N    dialling ConnectionActor per --connect URL   permanent (retries inside)
//! └── realizers (one_for_one)
//!     └── <name>       RealizerActor per sink                       permanent, backoff
//! ```
//! Rest-for-one at the root: when the store restarts, everything that holds its address
//! restarts after it; a dropped connection or a failing realizer restarts alone. Replicas
//! are started on demand ([`Replicas::ensure`]), so after their pool restarts they come back
//! the next time anyone touches them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use actix::prelude::*;
use replikativ_actors::{
    BackoffPolicy, ChildSpec, Pool, PoolHandle, Restart, Shutdown, Strategy, SupervisionError,
    SupervisionEvent, Supervisor, SupervisorHandle,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::crdt::{Cdvcs, CrdtKey};
use crate::id::Id;
use crate::peer::connection::{ConnectionActor, Mode};
use crate::peer::listener::ListenerActor;
use crate::realize::realizer::{ConflictPolicy, RealizerActor, RealizerShared, SinkOpener};
use crate::replica::{ReplicaActor, ReplicaError, ReplicaShared, StoreWriter, Watched};
use crate::stage::Stage;
use crate::store::{Store, StoreActor, StoreError, WriteBatch, keys};
use crate::sync::OutgoingCommit;

/// How many node events a slow watcher may lag behind before it resynchronises.
const EVENT_BUFFER: usize = 4096;
/// How long a writer waits for the root supervisor to name the current store actor.
const STORE_LOOKUP: Duration = Duration::from_secs(1);

/// Why the node could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// Opening the store failed.
    #[error("cannot open the store")]
    Store(#[source] Box<StoreError>),
    /// The supervision tree refused.
    #[error("supervision")]
    Supervision(#[source] Box<SupervisionError>),
    /// A replica could not be started.
    #[error("cannot start the replica of {key}")]
    Replica {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: Box<SupervisionError>,
    },
    /// A replica failed.
    #[error(transparent)]
    ReplicaFailed(#[from] ReplicaError),
    /// The node has not finished starting or is stopping.
    #[error("the node is not running")]
    NotRunning,
}

// Boxed sources keep `Result<_, NodeError>` small; `?` still converts the plain errors.
impl From<StoreError> for NodeError {
    fn from(e: StoreError) -> Self {
        NodeError::Store(Box::new(e))
    }
}

impl From<SupervisionError> for NodeError {
    fn from(e: SupervisionError) -> Self {
        NodeError::Supervision(Box::new(e))
    }
}

/// Something every connection of this node may need to react to.
#[derive(Clone, Debug)]
pub enum NodeEvent {
    /// A replica changed durably (or watchers lagged).
    Replica(Watched),
    /// A replica was created: subscribe to it on every connection.
    Created(CrdtKey),
}

/// Byte and refusal counters of the node's connections.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Frame bytes received.
    pub bytes_in: AtomicU64,
    /// Frame bytes sent.
    pub bytes_out: AtomicU64,
    /// Batches refused by verification.
    pub rejected: AtomicU64,
}

/// A dynamic pool under the node's tree, found again after its supervisor restarts.
///
/// A [`PoolHandle`] is bound to one incarnation of the pool's supervisor; when rest-for-one
/// restarts it (e.g. after the store actor failed), an old handle only answers
/// `SupervisorGone`. The slot keeps the pool's template and re-resolves the current
/// incarnation by path from the root whenever the cached one has stopped.
struct PoolSlot<A: Actor<Context = Context<A>>, Args: Clone + Send + Sync + 'static> {
    template: Pool<A, Args>,
    path: &'static [&'static str],
    root: SupervisorHandle,
    current: Mutex<Option<PoolHandle<A, Args>>>,
}

impl<A, Args> PoolSlot<A, Args>
where
    A: Actor<Context = Context<A>>,
    Args: Clone + Send + Sync + 'static,
{
    async fn handle(&self) -> Result<PoolHandle<A, Args>, NodeError> {
        if let Ok(cur) = self.current.lock()
            && let Some(h) = cur.as_ref()
            && h.supervisor().is_running()
        {
            return Ok(h.clone());
        }
        let mut sup = self.root.clone();
        for segment in self.path {
            sup = sup.supervisor(segment).await?;
        }
        let handle = self.template.handle(sup);
        if let Ok(mut cur) = self.current.lock() {
            *cur = Some(handle.clone());
        }
        Ok(handle)
    }
}

/// The replicas this node holds.
pub struct Replicas {
    store: Store,
    bus: broadcast::Sender<NodeEvent>,
    shared: Mutex<HashMap<CrdtKey, Arc<ReplicaShared>>>,
    pool: OnceLock<PoolSlot<ReplicaActor, Arc<ReplicaShared>>>,
    start_lock: tokio::sync::Mutex<()>,
}

impl Replicas {
    /// The current incarnation of the replicas pool.
    async fn pool(&self) -> Result<PoolHandle<ReplicaActor, Arc<ReplicaShared>>, NodeError> {
        self.pool.get().ok_or(NodeError::NotRunning)?.handle().await
    }

    fn child_id(key: &CrdtKey) -> String {
        format!("{}/{}", key.user, key.id)
    }

    /// The replica of `key`, started (and created empty, root only) when absent.
    pub async fn ensure(&self, key: &CrdtKey) -> Result<Arc<ReplicaShared>, NodeError> {
        self.addr(key).await?;
        self.get(key).ok_or(NodeError::NotRunning)
    }

    /// The shared state of `key`, if this node holds it.
    pub fn get(&self, key: &CrdtKey) -> Option<Arc<ReplicaShared>> {
        self.shared.lock().ok()?.get(key).cloned()
    }

    /// The current replica actor of `key`, starting it when it is not running.
    pub async fn addr(&self, key: &CrdtKey) -> Result<Addr<ReplicaActor>, NodeError> {
        let pool = self.pool().await?;
        let id = Self::child_id(key);
        if let Ok(addr) = pool.lookup(&id).await
            && addr.connected()
        {
            return Ok(addr);
        }
        let _guard = self.start_lock.lock().await;
        if let Ok(addr) = pool.lookup(&id).await
            && addr.connected()
        {
            return Ok(addr);
        }
        let (shared, created) = {
            let mut map = self.shared.lock().map_err(|_| NodeError::NotRunning)?;
            match map.get(key) {
                Some(s) => (s.clone(), false),
                None => {
                    let s = ReplicaShared::new(key.clone(), self.bus.clone());
                    map.insert(key.clone(), s.clone());
                    (s, true)
                }
            }
        };
        // A child of that id may be registered but stopped (e.g. restarting): replace it.
        let _ = pool.terminate_child(&id).await;
        let addr = pool
            .start_child(id, shared)
            .await
            .map_err(|source| NodeError::Replica {
                key: key.clone(),
                source: Box::new(source),
            })?;
        if created {
            let _ = self.bus.send(NodeEvent::Created(key.clone()));
        }
        Ok(addr)
    }

    /// Every CDVCS this node holds (started or only in the store).
    pub fn keys(&self) -> Vec<CrdtKey> {
        let mut keys: Vec<CrdtKey> = self
            .shared
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if let Ok(stored) = self.store.list_crdts() {
            for k in stored {
                let k = CrdtKey::new(k.user, k.crdt);
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        keys.sort();
        keys
    }

    /// The states of the replicas started so far.
    pub fn states(&self) -> Vec<(CrdtKey, Arc<RwLock<Cdvcs>>)> {
        self.shared
            .lock()
            .map(|m| m.iter().map(|(k, s)| (k.clone(), s.state())).collect())
            .unwrap_or_default()
    }
}

/// What the node's actors share.
pub struct NodeInner {
    /// The store handle (reads on the caller's thread).
    pub store: Store,
    /// This node's persistent peer id.
    pub peer_id: Uuid,
    /// The author recorded in commits made through the stage.
    pub author: String,
    /// The replicas.
    pub replicas: Replicas,
    /// Connection counters.
    pub metrics: Metrics,
    /// A peer that acknowledges nothing for this long while we wait is disconnected.
    pub slow_peer_timeout: Duration,
    bus: broadcast::Sender<NodeEvent>,
    root: OnceLock<SupervisorHandle>,
    store_addr: Mutex<Option<Addr<StoreActor>>>,
    connections: OnceLock<PoolSlot<ConnectionActor, Recipient<crate::peer::socket::Outgoing>>>,
    next_conn: AtomicU64,
    remote_heads: Mutex<HashMap<(u64, CrdtKey), Vec<Id>>>,
    dial_errors: Mutex<HashMap<String, String>>,
    listen_addr: Mutex<Option<SocketAddr>>,
}

impl NodeInner {
    /// A fresh id for a connection (echo suppression).
    pub fn next_connection_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Node events as a stream (for `ctx.add_stream`).
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

    /// The current store actor.
    ///
    /// The address is cached so that writers do not ask the root supervisor on every write;
    /// the root is asked only when the cached incarnation is gone, and then with a deadline:
    /// while the root is restarting its children (rest-for-one after a store failure) it is
    /// waiting for those children to stop, and a replica that waited on the root inside a
    /// transaction would never stop (a deadlock).
    pub async fn store_actor(&self) -> Option<Addr<StoreActor>> {
        if let Ok(cached) = self.store_addr.lock()
            && let Some(addr) = cached.as_ref()
            && addr.connected()
        {
            return Some(addr.clone());
        }
        let root = self.root.get()?;
        let found = tokio::time::timeout(STORE_LOOKUP, root.lookup::<StoreActor>("store"))
            .await
            .ok()?
            .ok()
            .filter(|a| a.connected())?;
        if let Ok(mut cached) = self.store_addr.lock() {
            *cached = Some(found.clone());
        }
        Some(found)
    }

    /// Writes `batch` through the store actor without waiting (hints, not data).
    pub fn write_in_background(self: &Arc<Self>, batch: WriteBatch) {
        let me = self.clone();
        actix_rt::spawn(async move {
            if let Some(store) = me.store_actor().await
                && let Ok(Err(e)) = store.send(crate::store::Write(batch)).await
            {
                tracing::warn!("background write failed: {e}");
            }
        });
    }

    /// A commit and its values, for sending to a peer.
    pub fn load_outgoing(&self, id: &Id) -> Result<OutgoingCommit, String> {
        crate::peer::connection::load_outgoing(&self.store, id)
    }

    /// Records the heads a connection's peer announced for `crdt`.
    pub fn note_remote_heads(&self, conn: u64, crdt: &CrdtKey, heads: &[Id]) {
        if let Ok(mut m) = self.remote_heads.lock() {
            m.entry((conn, crdt.clone()))
                .or_insert_with(|| heads.to_vec());
        }
    }

    /// The first heads any connected peer announced for `crdt` on its current connection.
    pub fn first_remote_heads(&self, crdt: &CrdtKey) -> Option<Vec<Id>> {
        let m = self.remote_heads.lock().ok()?;
        m.iter()
            .filter(|((_, k), _)| k == crdt)
            .min_by_key(|((c, _), _)| *c)
            .map(|(_, h)| h.clone())
    }

    /// A connection ended: forget what its peer announced.
    pub fn forget_remote(&self, conn: u64) {
        if let Ok(mut m) = self.remote_heads.lock() {
            m.retain(|(c, _), _| *c != conn);
        }
    }

    /// Remembers the last dial error of `url` (for a caller waiting on a connection).
    pub fn note_dial_error(&self, url: &str, error: String) {
        if let Ok(mut m) = self.dial_errors.lock() {
            m.insert(url.to_string(), error);
        }
    }

    /// The last dial error of `url`, if any.
    pub fn last_dial_error(&self, url: &str) -> Option<String> {
        self.dial_errors.lock().ok()?.get(url).cloned()
    }

    /// Where the listener is bound, once it is.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr.lock().ok().and_then(|a| *a)
    }

    pub(crate) fn set_listen_addr(&self, addr: SocketAddr) {
        if let Ok(mut a) = self.listen_addr.lock() {
            *a = Some(addr);
        }
    }

    /// The current incarnation of the pool of accepted connections.
    pub(crate) async fn connections(
        &self,
    ) -> Option<PoolHandle<ConnectionActor, Recipient<crate::peer::socket::Outgoing>>> {
        self.connections.get()?.handle().await.ok()
    }

    /// Dials `url` and keeps the connection up (a permanent child of `peers`).
    pub async fn connect(self: &Arc<Self>, url: &str) -> Result<(), NodeError> {
        let root = self.root.get().ok_or(NodeError::NotRunning)?;
        let peers = root.supervisor("peers").await?;
        let id = format!("connect-{}", self.next_connection_id());
        peers
            .start_child(dialer_spec(self.clone(), id, url.to_string()))
            .await?;
        Ok(())
    }
}

fn dialer_spec(node: Arc<NodeInner>, id: String, url: String) -> ChildSpec {
    ChildSpec::actor(id, move || {
        ConnectionActor::new(node.clone(), Mode::Dial(url.clone()), url.clone())
    })
    .restart(Restart::Permanent)
    .shutdown(Shutdown::Timeout(Duration::from_secs(2)))
}

/// Where the store lives.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    /// A directory on disk (created if missing).
    Dir(PathBuf),
    /// redb's in-memory backend (tests).
    Memory,
    /// An already open store.
    Open(Store),
}

/// A realizer to run under the node.
#[derive(Clone)]
pub struct RealizerSpec {
    /// Its name (supervision id, logs).
    pub name: String,
    /// The CDVCS it follows.
    pub key: CrdtKey,
    /// Opens its sink.
    pub open: SinkOpener,
    /// What to do with several heads.
    pub policy: ConflictPolicy,
}

/// Builds a node.
pub struct NodeBuilder {
    name: String,
    store: StoreLocation,
    listen: Option<String>,
    connect: Vec<String>,
    author: String,
    cdvcs: Vec<CrdtKey>,
    realizers: Vec<RealizerSpec>,
    apps: Vec<ChildSpec>,
    slow_peer_timeout: Duration,
}

/// A running node.
pub struct Node {
    inner: Arc<NodeInner>,
    root: SupervisorHandle,
    realizers: HashMap<String, Arc<RealizerShared>>,
}

impl Node {
    /// A builder with defaults: in-memory store, no listener, no peers.
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            name: "node".into(),
            store: StoreLocation::Memory,
            listen: None,
            connect: Vec::new(),
            author: "replikativ".into(),
            cdvcs: Vec::new(),
            realizers: Vec::new(),
            apps: Vec::new(),
            slow_peer_timeout: crate::peer::connection::SLOW_PEER_TIMEOUT,
        }
    }

    /// The user's handle.
    pub fn stage(&self) -> Stage {
        Stage::new(self.inner.clone())
    }

    /// The shared internals (store, replicas, metrics).
    pub fn inner(&self) -> &Arc<NodeInner> {
        &self.inner
    }

    /// The root supervisor (lookups, introspection).
    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.root
    }

    /// Where the websocket listener is bound.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.inner.listen_addr()
    }

    /// The supervision tree, printable.
    pub async fn tree(&self) -> Result<String, NodeError> {
        Ok(self.root.tree().await?.to_string())
    }

    /// Supervision events from now on (the whole tree).
    pub fn events(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.root.subscribe()
    }

    /// A realizer's shared state (status, applied set).
    pub fn realizer(&self, name: &str) -> Option<Arc<RealizerShared>> {
        self.realizers.get(name).cloned()
    }

    /// Stops the tree in reverse start order and waits for it.
    pub async fn shutdown(&self) {
        let reason = self.root.shutdown().await;
        tracing::debug!(?reason, "node stopped");
    }
}

impl NodeBuilder {
    /// The root supervisor's name (default `node`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Where the store lives (default: in memory).
    pub fn store(mut self, location: StoreLocation) -> Self {
        self.store = location;
        self
    }

    /// A store directory on disk.
    pub fn store_dir(self, dir: impl Into<PathBuf>) -> Self {
        self.store(StoreLocation::Dir(dir.into()))
    }

    /// Serve peers on `HOST:PORT` (port 0 picks a free one; see [`Node::listen_addr`]).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = Some(addr.into());
        self
    }

    /// Keep a connection to this peer URL (`ws://host:port/`).
    pub fn connect(mut self, url: impl Into<String>) -> Self {
        self.connect.push(url.into());
        self
    }

    /// The author recorded in commits.
    pub fn author(mut self, author: impl Into<String>) -> Self {
        self.author = author.into();
        self
    }

    /// Create or open this CDVCS at start (and subscribe to it on every connection).
    pub fn cdvcs(mut self, key: CrdtKey) -> Self {
        self.cdvcs.push(key);
        self
    }

    /// Realize a CDVCS into a sink.
    pub fn realize(mut self, spec: RealizerSpec) -> Self {
        self.cdvcs.push(spec.key.clone());
        self.realizers.push(spec);
        self
    }

    /// Disconnect a peer that stops reading (acknowledges no batch) for this long (default
    /// [`SLOW_PEER_TIMEOUT`](crate::peer::connection::SLOW_PEER_TIMEOUT)).
    pub fn slow_peer_timeout(mut self, timeout: Duration) -> Self {
        self.slow_peer_timeout = timeout;
        self
    }

    /// Adds a subtree of the user's own (e.g. a collector) after the node's own subtrees; it
    /// is started last and stopped first.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.apps.push(spec);
        self
    }

    /// Opens the store and starts the tree.
    pub async fn start(self) -> Result<Node, NodeError> {
        let store = match &self.store {
            StoreLocation::Dir(dir) => Store::open(dir)?,
            StoreLocation::Memory => Store::in_memory()?,
            StoreLocation::Open(s) => s.clone(),
        };
        let peer_id = load_or_create_peer_id(&store)?;
        let bus = broadcast::channel(EVENT_BUFFER).0;
        let inner = Arc::new(NodeInner {
            store: store.clone(),
            peer_id,
            author: self.author.clone(),
            replicas: Replicas {
                store: store.clone(),
                bus: bus.clone(),
                shared: Mutex::new(HashMap::new()),
                pool: OnceLock::new(),
                start_lock: tokio::sync::Mutex::new(()),
            },
            metrics: Metrics::default(),
            slow_peer_timeout: self.slow_peer_timeout,
            bus,
            root: OnceLock::new(),
            store_addr: Mutex::new(None),
            connections: OnceLock::new(),
            next_conn: AtomicU64::new(0),
            remote_heads: Mutex::new(HashMap::new()),
            dial_errors: Mutex::new(HashMap::new()),
            listen_addr: Mutex::new(None),
        });

        let writer: StoreWriter = {
            let node = Arc::downgrade(&inner);
            Arc::new(move || {
                let node = node.clone();
                Box::pin(async move {
                    match node.upgrade() {
                        Some(n) => n.store_actor().await,
                        None => None,
                    }
                })
            })
        };
        let replica_store = store.clone();
        let replicas = Pool::new("replicas", move |shared: Arc<ReplicaShared>| {
            ReplicaActor::load(shared, replica_store.clone(), writer.clone())
        })
        .restart(Restart::Permanent)
        .intensity(10, Duration::from_secs(10))
        .backoff(restart_backoff());

        // Weak: the pool's template lives in `inner` (its slot), so a strong reference here
        // would be a cycle that keeps the node, and its store file, alive after shutdown.
        let conn_node = Arc::downgrade(&inner);
        let connections = Pool::new(
            "connections",
            move |out: Recipient<crate::peer::socket::Outgoing>| {
                let node = conn_node
                    .upgrade()
                    .ok_or_else(|| Box::new(NodeError::NotRunning))?;
                Ok::<_, Box<NodeError>>(ConnectionActor::new(
                    node,
                    Mode::Accepted(out),
                    "accepted".into(),
                ))
            },
        )
        .restart(Restart::Temporary)
        .intensity(1000, Duration::from_secs(1));

        let mut peers = Supervisor::new("peers")
            .strategy(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(10))
            .backoff(restart_backoff());
        if let Some(listen) = &self.listen {
            let node = inner.clone();
            let listen = listen.clone();
            peers = peers.child(
                ChildSpec::new("listener", move || {
                    ListenerActor::bind(node.clone(), &listen)
                })
                .shutdown(Shutdown::Timeout(Duration::from_secs(2))),
            );
        }
        peers = peers.child(connections.child_spec());
        for (i, url) in self.connect.iter().enumerate() {
            peers = peers.child(dialer_spec(
                inner.clone(),
                format!("connect-{i}"),
                url.clone(),
            ));
        }

        let mut realizers = Supervisor::new("realizers")
            .strategy(Strategy::OneForOne)
            .intensity(20, Duration::from_secs(10))
            .backoff(restart_backoff());
        let mut realizer_shared = HashMap::new();
        for spec in &self.realizers {
            let replica = ReplicaShared::new(spec.key.clone(), inner.replicas.bus.clone());
            if let Ok(mut m) = inner.replicas.shared.lock() {
                m.entry(spec.key.clone()).or_insert_with(|| replica.clone());
            }
            let replica = inner.replicas.get(&spec.key).unwrap_or(replica);
            let shared = RealizerShared::new(
                spec.name.clone(),
                replica,
                store.clone(),
                spec.open.clone(),
                spec.policy,
            );
            realizer_shared.insert(spec.name.clone(), shared.clone());
            realizers = realizers.child(
                ChildSpec::new(spec.name.clone(), move || {
                    RealizerActor::new(shared.clone())
                })
                .shutdown(Shutdown::Timeout(Duration::from_secs(10))),
            );
        }

        let store_for_actor = store.clone();
        let root = Supervisor::new(self.name.clone())
            .strategy(Strategy::RestForOne)
            .intensity(10, Duration::from_secs(10))
            .backoff(restart_backoff())
            .child(
                ChildSpec::actor("store", move || StoreActor::new(store_for_actor.clone()))
                    .shutdown(Shutdown::Timeout(Duration::from_secs(30))),
            )
            .child(replicas.child_spec())
            .start()
            .await?;
        let _ = inner.root.set(root.clone());
        let _ = inner.replicas.pool.set(PoolSlot {
            template: replicas,
            path: &["replicas"],
            root: root.clone(),
            current: Mutex::new(None),
        });
        let _ = inner.connections.set(PoolSlot {
            template: connections,
            path: &["peers", "connections"],
            root: root.clone(),
            current: Mutex::new(None),
        });
        // Every replica is loaded before peers and realizers start: a connection opened
        // earlier would announce a not-yet-loaded CDVCS as root-only and be sent its whole
        // history again.
        let mut keys = inner.replicas.keys();
        keys.extend(self.cdvcs.iter().cloned());
        let started: Result<(), NodeError> = async {
            for key in &keys {
                inner.replicas.ensure(key).await?;
            }
            root.start_child(ChildSpec::supervisor(peers)).await?;
            root.start_child(ChildSpec::supervisor(realizers)).await?;
            // The user's subtrees start once replicas can be reached.
            for app in self.apps {
                root.start_child(app).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = started {
            // Stop what did start: it would otherwise keep running, holding the store, after
            // this error (and panic when its actix system is dropped).
            root.shutdown().await;
            return Err(e);
        }
        Ok(Node {
            inner,
            root,
            realizers: realizer_shared,
        })
    }
}

/// The node's restart backoff: 50 ms doubling to 5 s, with jitter, reset after 10 s up.
pub fn restart_backoff() -> BackoffPolicy {
    BackoffPolicy::exponential(Duration::from_millis(50), Duration::from_secs(5))
        .jitter(0.3)
        .reset_after(Duration::from_secs(10))
}

fn load_or_create_peer_id(store: &Store) -> Result<Uuid, NodeError> {
    if let Some(raw) = store.get_state(keys::NODE_ID)?
        && let Ok(id) = Uuid::from_slice(&raw)
    {
        return Ok(id);
    }
    let id = Uuid::new_v4();
    let mut batch = WriteBatch::new();
    batch.put_state(keys::NODE_ID, id.as_bytes().to_vec());
    store.write(&batch)?;
    Ok(id)
}
