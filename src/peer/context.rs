//! [`PeerContext`]: what the node's connections and listener share — the node's identity
//! and trust (who may do what), the replicas they serve, the store (reads, and writes of
//! hints), the pool accepted connections join, dialling, the listen address, and what is
//! known of each peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix::prelude::*;
use replikativ_actors::{
    ChildSpec, Pool, PoolHandle, Restart, Shutdown, Strategy, SupervisionError, Supervisor,
    SupervisorSlot,
};

use crate::crdt::CrdtKey;
use crate::id::Id;
use crate::identity::PublicKey;
use crate::peer::connection::{ConnectionActor, Mode};
use crate::peer::listener::ListenerActor;
use crate::peer::socket::Outgoing;
use crate::peer::tls::{ChannelBinding, TlsSettings};
use crate::peer::trust::Trust;
use crate::replicas::{NodeEvent, Replicas};
use crate::store::{Store, StoreHandle, WriteBatch};
use crate::sync::{OutgoingCommit, Rights, Role};

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

/// Why a peer operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The node has not finished starting or is stopping.
    #[error("the node is not running")]
    NotRunning,
    /// The `peers` supervisor refused or is gone.
    #[error("the peers supervisor")]
    Supervision(#[source] Box<SupervisionError>),
}

impl From<SupervisionError> for PeerError {
    fn from(e: SupervisionError) -> Self {
        PeerError::Supervision(Box::new(e))
    }
}

/// What starts an accepted connection: where its frames go, its TLS channel binding, and the
/// remote address (for logs and operators).
pub type Accepted = (Recipient<Outgoing>, Option<ChannelBinding>, String);

type ConnectionPool = Pool<ConnectionActor, Accepted>;

/// How long accepting or dialling waits for `peers` (or its pool) while a restart is under
/// way.
const SUBTREE_WAIT: Duration = Duration::from_secs(5);

/// Shared by the node's connections and listener.
pub struct PeerContext {
    /// The store, for reads on the caller's thread.
    pub(crate) store: Store,
    writer: StoreHandle,
    /// The replicas served.
    pub(crate) replicas: Arc<Replicas>,
    /// This node's key pair: its identity towards peers.
    pub(crate) identity: crate::identity::Keypair,
    /// Who may do what here.
    pub(crate) trust: Trust,
    /// Connection counters.
    pub(crate) metrics: Metrics,
    /// A peer that acknowledges nothing for this long while we wait is disconnected.
    pub(crate) slow_peer_timeout: Duration,
    next_conn: AtomicU64,
    remote_heads: Mutex<HashMap<(u64, CrdtKey), Vec<Id>>>,
    dial_errors: Mutex<HashMap<String, String>>,
    refusals: Mutex<HashMap<String, String>>,
    listen_addr: Mutex<Option<SocketAddr>>,
    /// The listener's certificate and what dialled peers are verified against.
    tls: OnceLock<TlsSettings>,
    /// The pool accepted connections join (made once the context is shared, see
    /// [`PeerContext::subtree`]) and its running incarnation.
    connections: OnceLock<ConnectionPool>,
    connections_running: SupervisorSlot,
    /// The running incarnation of `peers`, where dialled connections are added.
    peers_running: SupervisorSlot,
    /// The authenticated connections, for operators.
    pub(crate) live: crate::peer::live::LiveConnections,
    /// The operations endpoints the listener serves beside the websocket (set by the node).
    admin: OnceLock<Arc<dyn crate::peer::live::AdminService>>,
    web: OnceLock<crate::peer::web_app::WebApp>,
    /// Whether connections count their bytes and record the peer's lag (`/metrics`).
    metrics_on: std::sync::atomic::AtomicBool,
    /// How connections subscribe and apply (`--mirror`, `--max-subscriptions`).
    subscriptions: Mutex<Subscriptions>,
    /// The listener's servers still running (their workers hold this context and the store).
    pub(crate) servers: crate::peer::listener::ServersRunning,
}

/// How this node's connections take CDVCSs from their peers and apply what they receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscriptions {
    /// Whether dialled connections take every CDVCS the peer offers, however many (`--mirror`).
    pub mirror: bool,
    /// Otherwise, how many replicas one connection's subscriptions may create here
    /// (`--max-subscriptions`; default [`SyncLimits::max_subscriptions`](crate::sync::SyncLimits)).
    pub max: usize,
    /// Received batches one connection hands to replicas before the first is durable (they
    /// share group commits); 1 applies them one at a time, as before (benchmark baseline).
    pub apply_window: usize,
}

impl Default for Subscriptions {
    fn default() -> Subscriptions {
        Subscriptions {
            mirror: false,
            max: crate::sync::SyncLimits::default().max_subscriptions,
            apply_window: crate::peer::connection::APPLY_WINDOW,
        }
    }
}

impl PeerContext {
    pub(crate) fn new(
        store: StoreHandle,
        replicas: Arc<Replicas>,
        identity: crate::identity::Keypair,
        trust: Trust,
        slow_peer_timeout: Duration,
    ) -> PeerContext {
        PeerContext {
            store: store.store().clone(),
            writer: store,
            replicas,
            identity,
            trust,
            metrics: Metrics::default(),
            slow_peer_timeout,
            next_conn: AtomicU64::new(0),
            remote_heads: Mutex::new(HashMap::new()),
            dial_errors: Mutex::new(HashMap::new()),
            refusals: Mutex::new(HashMap::new()),
            listen_addr: Mutex::new(None),
            tls: OnceLock::new(),
            connections: OnceLock::new(),
            connections_running: SupervisorSlot::new(),
            peers_running: SupervisorSlot::new(),
            live: Default::default(),
            admin: OnceLock::new(),
            web: OnceLock::new(),
            metrics_on: std::sync::atomic::AtomicBool::new(true),
            subscriptions: Mutex::new(Subscriptions::default()),
            servers: Default::default(),
        }
    }

    /// How connections subscribe and apply (see `NodeBuilder::mirror`).
    pub(crate) fn set_subscriptions(&self, s: Subscriptions) {
        *self.subscriptions.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }

    /// How connections subscribe and apply.
    pub fn subscriptions(&self) -> Subscriptions {
        *self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether dialled connections take every CDVCS the peer offers, however many.
    pub fn mirrors(&self) -> bool {
        self.subscriptions().mirror
    }

    /// Whether connections keep per-connection measurements (see `NodeBuilder::metrics`).
    pub(crate) fn set_metrics(&self, on: bool) {
        self.metrics_on.store(on, Ordering::Relaxed);
    }

    /// Whether connections keep per-connection measurements.
    pub(crate) fn metrics_on(&self) -> bool {
        self.metrics_on.load(Ordering::Relaxed)
    }

    /// Sets the operations endpoints (once; later calls are ignored).
    pub(crate) fn set_admin(&self, admin: Arc<dyn crate::peer::live::AdminService>) {
        let _ = self.admin.set(admin);
    }

    /// Serves the browser peer's page at `/app` (once; later calls are ignored).
    pub(crate) fn set_web(&self, app: Option<crate::peer::web_app::WebApp>) {
        if let Some(app) = app {
            let _ = self.web.set(app);
        }
    }

    /// The page at `/app`, when the node serves it.
    pub(crate) fn web(&self) -> Option<&crate::peer::web_app::WebApp> {
        self.web.get()
    }

    /// The operations endpoints, once the node has set them.
    pub(crate) fn admin(&self) -> Option<Arc<dyn crate::peer::live::AdminService>> {
        self.admin.get().cloned()
    }

    /// The authenticated connections, by number.
    pub fn live_connections(&self) -> Vec<Arc<crate::peer::live::LiveConnection>> {
        self.live.snapshot()
    }

    /// The pool accepted connections join. Holds the context weakly: the pool's template
    /// lives in the context, and a strong reference would be a cycle that kept the node (and
    /// its store file) alive after shutdown.
    fn connection_pool(self: &Arc<Self>) -> ConnectionPool {
        let me = Arc::downgrade(self);
        Pool::new("connections", move |(out, binding, remote): Accepted| {
            let peers = me.upgrade().ok_or(PeerError::NotRunning)?;
            let mut conn = ConnectionActor::new(peers, Mode::Accepted(out), remote);
            conn.channel_binding = binding;
            Ok::<_, PeerError>(conn)
        })
        .children(|c| c.restart(Restart::Temporary))
        .intensity(1000, Duration::from_secs(1))
    }

    /// This node's public key.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public()
    }

    /// Who may do what on this node.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// The rights of `peer` on a connection where this node is `ours`, or why it is refused
    /// and what to do about it.
    pub fn admit(&self, peer: &PublicKey, ours: Role) -> Result<Rights, String> {
        if let Some(rights) = self.trust.policy().rights(peer, ours) {
            return Ok(rights);
        }
        let how = match self.trust.file() {
            Some(file) => format!(
                "add it with --allow (or a line in {}, then SIGHUP)",
                file.display()
            ),
            None => "add it with --allow".to_string(),
        };
        let at = match self.listen_addr() {
            Some(addr) => format!(" (ws://{addr}/)"),
            None => String::new(),
        };
        Err(format!(
            "unknown peer key {peer}: {how} on node {}{at}",
            self.public_key()
        ))
    }

    /// Connection counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A fresh id for a connection (echo suppression).
    pub fn next_connection_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Node events as a stream (for `ctx.add_stream`).
    pub fn events_stream(&self) -> impl futures_util::Stream<Item = NodeEvent> + 'static {
        self.replicas.events_stream()
    }

    /// Writes `batch` without waiting (hints, not data).
    pub fn write_in_background(&self, batch: WriteBatch) {
        self.writer.write_in_background(batch);
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

    /// The first heads the peer of the newest connection announced for `crdt`, with that
    /// connection's number (a later connection sees a later state of the peer).
    pub fn newest_remote_heads(&self, crdt: &CrdtKey) -> Option<(u64, Vec<Id>)> {
        let m = self.remote_heads.lock().ok()?;
        m.iter()
            .filter(|((_, k), _)| k == crdt)
            .max_by_key(|((c, _), _)| *c)
            .map(|((c, _), h)| (*c, h.clone()))
    }

    /// A connection ended: forget what its peer announced, and the connection.
    pub fn forget_remote(&self, conn: u64) {
        self.live.remove(conn);
        if let Ok(mut m) = self.remote_heads.lock() {
            m.retain(|(c, _), _| *c != conn);
        }
    }

    /// Remembers the last dial error of `url` (for a caller waiting on a connection); logs
    /// it when it differs from the last one (a dialler retries quietly).
    pub fn note_dial_error(&self, url: &str, error: String) {
        if let Ok(mut m) = self.dial_errors.lock() {
            if m.get(url) != Some(&error) {
                tracing::warn!("{error}; retrying");
            }
            m.insert(url.to_string(), error);
        }
    }

    /// The last dial error of `url`, if any.
    pub fn last_dial_error(&self, url: &str) -> Option<String> {
        self.dial_errors.lock().ok()?.get(url).cloned()
    }

    /// The TLS settings (the defaults until the node sets its own at start).
    pub fn tls(&self) -> &TlsSettings {
        self.tls.get_or_init(TlsSettings::default)
    }

    /// Sets the TLS settings; only before anything used them (the node does at start).
    pub(crate) fn set_tls(&self, tls: TlsSettings) {
        let _ = self.tls.set(tls);
    }

    /// Records that the connection to `url` was refused (by the peer, or by this node's
    /// rules), or that the refusal is over (`None`).
    pub fn note_refusal(&self, url: &str, why: Option<String>) {
        if let Ok(mut m) = self.refusals.lock() {
            match why {
                Some(why) => m.insert(url.to_string(), why),
                None => m.remove(url),
            };
        }
    }

    /// Why the last connection to `url` was refused, while it is: retrying would meet the
    /// same refusal until a peer's rules change.
    pub fn refusal(&self, url: &str) -> Option<String> {
        self.refusals.lock().ok()?.get(url).cloned()
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
    pub(crate) async fn connections(&self) -> Option<PoolHandle<ConnectionActor, Accepted>> {
        let running = self.connections_running.wait(SUBTREE_WAIT).await?;
        Some(self.connections.get()?.handle(running))
    }

    /// Dials `url` and keeps the connection up (a permanent child of `peers`).
    pub async fn connect(self: &Arc<Self>, url: &str) -> Result<(), PeerError> {
        let peers = self
            .peers_running
            .wait(SUBTREE_WAIT)
            .await
            .ok_or(PeerError::NotRunning)?;
        let id = format!("connect-{}", self.next_connection_id());
        peers
            .start_child(dialer_spec(self.clone(), id, url.to_string()))
            .await?;
        Ok(())
    }
}

impl PeerContext {
    /// `peers (one_for_one)`: the listener on `listen`, the pool of accepted connections,
    /// and one dialler per `connect` URL.
    pub(crate) fn subtree(
        self: &Arc<Self>,
        listen: Option<&str>,
        connect: &[String],
        backoff: replikativ_actors::BackoffPolicy,
    ) -> ChildSpec {
        let pool = self.connections.get_or_init(|| self.connection_pool());
        let mut sup = Supervisor::new("peers")
            .strategy(Strategy::OneForOne)
            .intensity(10, Duration::from_secs(10))
            .backoff(backoff);
        if let Some(listen) = listen {
            let (ctx, listen) = (self.clone(), listen.to_string());
            sup = sup.child(
                ChildSpec::new("listener", move || {
                    ListenerActor::bind(ctx.clone(), &listen)
                })
                .shutdown(Shutdown::Timeout(Duration::from_secs(2))),
            );
        }
        sup = sup.child(pool.child_spec_in(self.connections_running.clone()));
        for (i, url) in connect.iter().enumerate() {
            sup = sup.child(dialer_spec(
                self.clone(),
                format!("connect-{i}"),
                url.clone(),
            ));
        }
        ChildSpec::supervisor_in(sup, self.peers_running.clone())
    }
}

/// A dialling connection to `url`, restarted forever (it backs off inside).
pub(crate) fn dialer_spec(peers: Arc<PeerContext>, id: String, url: String) -> ChildSpec {
    ChildSpec::actor(id, move || {
        ConnectionActor::new(peers.clone(), Mode::Dial(url.clone()), url.clone())
    })
    .restart(Restart::Permanent)
    .shutdown(Shutdown::Timeout(Duration::from_secs(2)))
}
