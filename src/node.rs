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
//! Rest-for-one at the root: when the store restarts, everything after it restarts; a dropped
//! connection or a failing realizer restarts alone. Each actor gets only what it uses: the
//! replicas a [`StoreHandle`], connections the [`PeerContext`], the stage both.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use replikativ_actors::{
    BackoffPolicy, ChildSpec, Shutdown, Strategy, SupervisionEvent, Supervisor, SupervisorHandle,
};
use tokio::sync::broadcast;

use crate::crdt::CrdtKey;
use crate::identity::{KeyFiles as _, Keypair, PublicKey};
use crate::peer::{context::PeerContext, tls::TlsSettings};
use crate::realize::realizer::RealizerShared;
use crate::replica::ReplicaShared;
use crate::replicas::Replicas;
use crate::stage::Stage;
use crate::store::{Store, StoreHandle};

mod error;
mod measure;
mod mirror;
mod realizers;
mod tls;
mod trust;
mod web;

pub use crate::peer::context::Metrics;
pub use crate::realize::realizer::RealizerSpec;
pub use crate::replicas::NodeEvent;
pub use crate::store::StoreLocation;
pub use error::NodeError;

/// Builds a node.
pub struct NodeBuilder {
    name: String,
    store: StoreLocation,
    listen: Option<String>,
    connect: Vec<String>,
    cdvcs: Vec<CrdtKey>,
    realizers: Vec<RealizerSpec>,
    apps: Vec<ChildSpec>,
    slow_peer_timeout: Duration,
    key: Option<Keypair>,
    unsigned_author: Option<String>,
    tls: TlsSettings,
    trust: crate::peer::trust::TrustConfig,
    admin_token: Option<String>,
    metrics: bool,
    subscriptions: crate::peer::context::Subscriptions,
    web: Option<CrdtKey>,
}

/// A running node.
pub struct Node {
    replicas: Arc<Replicas>,
    peers: Arc<PeerContext>,
    store: StoreHandle,
    root: SupervisorHandle,
    realizers: HashMap<String, Arc<RealizerShared>>,
    ops: Arc<crate::ops::Ops>,
    /// Whether the node opened its store (and so closes it when it shuts down).
    owns_store: bool,
}

impl Node {
    /// A builder with defaults: in-memory store, no listener, no peers.
    pub fn builder() -> NodeBuilder {
        NodeBuilder {
            name: "node".into(),
            store: StoreLocation::Memory,
            listen: None,
            connect: Vec::new(),
            cdvcs: Vec::new(),
            realizers: Vec::new(),
            apps: Vec::new(),
            slow_peer_timeout: crate::peer::connection::SLOW_PEER_TIMEOUT,
            key: None,
            unsigned_author: None,
            tls: TlsSettings::default(),
            trust: Default::default(),
            admin_token: None,
            metrics: true,
            subscriptions: Default::default(),
            web: None,
        }
    }

    /// The user's handle.
    pub fn stage(&self) -> Stage {
        Stage::new(self.replicas.clone(), self.peers.clone())
    }

    /// The store, for reads (writes go through the stage and the replicas).
    pub fn store(&self) -> &Store {
        self.store.store()
    }

    /// The replicas this node holds.
    pub fn replicas(&self) -> &Arc<Replicas> {
        &self.replicas
    }

    /// The shared state of the replica of `key`, if this node holds it.
    pub fn replica(&self, key: &CrdtKey) -> Option<Arc<ReplicaShared>> {
        self.replicas.get(key)
    }

    /// What the connections share: key, trust, counters, what peers announced, dial errors.
    pub fn peers(&self) -> &Arc<PeerContext> {
        &self.peers
    }

    /// This node's public key (its identity towards peers).
    pub fn public_key(&self) -> PublicKey {
        self.peers.public_key()
    }

    /// The root supervisor (lookups, introspection).
    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.root
    }

    /// Where the websocket listener is bound.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.peers.listen_addr()
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

    /// Stops the tree in reverse start order and waits for it and for the listener's server;
    /// then closes the store if the node opened it (not one handed in as
    /// [`StoreLocation::Open`]): it is cleanly closed when this returns.
    pub async fn shutdown(&self) {
        let reason = self.root.shutdown().await;
        if !self.peers.servers.all_stopped(Duration::from_secs(5)).await {
            tracing::warn!("the websocket server had not stopped 5 s after the node");
        }
        if self.owns_store {
            self.store.store().close();
        }
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

    /// The node's key; by default `node.key` beside the store, made on first start.
    pub fn key(mut self, key: Keypair) -> Self {
        self.key = Some(key);
        self
    }

    /// Adds a subtree of the user's own (e.g. a collector) after the node's own subtrees; it
    /// is started last and stopped first.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.apps.push(spec);
        self
    }

    /// Opens the store and starts the tree: the store actor and the replicas first (those
    /// named by [`cdvcs`](Self::cdvcs) started; the others on first use), then peers and
    /// realizers, then the user's subtrees.
    pub async fn start(mut self) -> Result<Node, NodeError> {
        let trust = self.trust.build(self.listen.as_deref())?;
        let store = self.store.open()?;
        let owns_store = !matches!(self.store, StoreLocation::Open(_));
        let identity = match self.key.take() {
            Some(key) => key,
            None => Keypair::of_store(&store)?,
        };
        let handle = StoreHandle::new(store.clone());
        handle.time_commits(self.metrics);
        let replicas = Arc::new(Replicas::new(
            handle.clone(),
            restart_backoff(),
            identity.clone(),
            self.unsigned_author.take(),
        ));
        let peers = Arc::new(PeerContext::new(
            handle.clone(),
            replicas.clone(),
            identity,
            trust,
            self.slow_peer_timeout,
        ));
        peers.set_tls(std::mem::take(&mut self.tls));
        peers.set_metrics(self.metrics);
        peers.set_subscriptions(self.subscriptions);
        peers.set_web(self.web.take().map(crate::peer::web_app::WebApp::new));
        let (realizers, realizer_shared) = self.realizers_subtree(&replicas, &store);
        let writer = handle.clone();
        let root = Supervisor::new(self.name.clone())
            .strategy(Strategy::RestForOne)
            .intensity(10, Duration::from_secs(10))
            .backoff(restart_backoff())
            .child(
                ChildSpec::new_in("store", handle.slot(), move || writer.store_actor())
                    .shutdown(Shutdown::Timeout(Duration::from_secs(30))),
            )
            .child(replicas.child_spec())
            .start()
            .await?;
        let ops = crate::ops::Ops::new(
            &peers,
            replicas.clone(),
            root.clone(),
            realizer_shared.clone(),
            root.subscribe(),
            self.admin_token.take(),
            handle.commit_seconds().clone(),
        );
        peers.set_admin(ops.clone());
        let peers_subtree = peers.subtree(self.listen.as_deref(), &self.connect, restart_backoff());
        // Replicas start on first use (connections offer the others' stored heads); those
        // named here start now. The user's subtrees start once replicas can be reached.
        let started: Result<(), NodeError> = async {
            for key in &self.cdvcs {
                replicas.ensure(key).await?;
            }
            root.start_child(peers_subtree).await?;
            root.start_child(ChildSpec::supervisor(realizers)).await?;
            for app in self.apps {
                root.start_child(app).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = started {
            // Stop what did start: it would otherwise keep running, holding the store.
            root.shutdown().await;
            return Err(e);
        }
        Ok(Node {
            replicas,
            peers,
            store: handle,
            root,
            realizers: realizer_shared,
            ops,
            owns_store,
        })
    }
}

/// The node's restart backoff: 50 ms doubling to 5 s, with jitter, reset after 10 s up.
pub fn restart_backoff() -> BackoffPolicy {
    BackoffPolicy::exponential(Duration::from_millis(50), Duration::from_secs(5))
        .jitter(0.3)
        .reset_after(Duration::from_secs(10))
}
