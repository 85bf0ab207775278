//! Operations (DESIGN §14): what a node shows its operator beside the websocket — `/healthz`,
//! `/metrics` (Prometheus text) and `/status.json` — built from the running node at each
//! request.
//!
//! Access: open when every listener is bound to a loopback address; otherwise each request
//! must carry `Authorization: Bearer <token>` with the node's admin token
//! (`--admin-token-file`), and without a token the endpoints are closed. `--open` opens
//! replication reads, not these.

mod endpoints;
pub mod metrics;
pub mod mount;
pub mod status;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};

use replikativ_actors::{SupervisionEvent, SupervisorHandle};
use tokio::sync::broadcast;

use crate::peer::context::PeerContext;
use crate::peer::live::{AdminBody, AdminRequest, AdminResponse};
use crate::realize::realizer::{RealizerShared, RealizerStatus};
use crate::replicas::Replicas;
use status::{CdvcsJson, ConnectionJson, EventJson, ParkedJson, RealizerJson, Status};

/// Recent supervision events kept for `/status.json`.
const EVENTS_KEPT: usize = 200;

/// The node's operations endpoints.
#[derive(Clone)]
pub struct Ops {
    peers: Weak<PeerContext>,
    replicas: Arc<Replicas>,
    root: SupervisorHandle,
    realizers: HashMap<String, Arc<RealizerShared>>,
    events: Arc<Mutex<VecDeque<EventJson>>>,
    token: Option<String>,
    commit_seconds: prometheus_client::metrics::histogram::Histogram,
    counters: Arc<Mutex<Vec<Registered>>>,
}

/// A counter an application registered: name, help, how to read it.
type Registered = (String, String, Arc<dyn Fn() -> u64 + Send + Sync>);

impl Ops {
    /// The endpoints of a node; records supervision events from `events` from now on (on
    /// the current arbiter).
    pub fn new(
        peers: &Arc<PeerContext>,
        replicas: Arc<Replicas>,
        root: SupervisorHandle,
        realizers: HashMap<String, Arc<RealizerShared>>,
        mut events: broadcast::Receiver<SupervisionEvent>,
        token: Option<String>,
        commit_seconds: prometheus_client::metrics::histogram::Histogram,
    ) -> Arc<Ops> {
        let kept = Arc::new(Mutex::new(VecDeque::new()));
        let sink = Arc::downgrade(&kept);
        actix_rt::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(kept) = sink.upgrade() else { return };
                let mut kept = match kept.lock() {
                    Ok(k) => k,
                    Err(p) => p.into_inner(),
                };
                if kept.len() == EVENTS_KEPT {
                    kept.pop_front();
                }
                kept.push_back(event_json(&event));
            }
        });
        Arc::new(Ops {
            peers: Arc::downgrade(peers),
            replicas,
            root,
            realizers,
            events: kept,
            token,
            commit_seconds,
            counters: Default::default(),
        })
    }

    /// Adds a counter to `/metrics`: `name` without `_total` (added on output), read at each
    /// scrape (e.g. `replikativ_collected_tweets` from the collector's report).
    pub fn add_counter(
        &self,
        name: &str,
        help: &str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        if let Ok(mut c) = self.counters.lock() {
            c.push((name.to_owned(), help.to_owned(), Arc::new(read)));
        }
    }

    /// Whether `request` may see the endpoints.
    fn admitted(&self, peers: &PeerContext, request: &AdminRequest) -> Result<(), AdminResponse> {
        if request.trusted {
            return Ok(());
        }
        let loopback = peers.listen_addr().is_some_and(|a| a.ip().is_loopback());
        match (&self.token, &request.bearer) {
            (Some(token), Some(given)) if constant_time_eq(token, given) => Ok(()),
            _ if loopback => Ok(()),
            (None, _) => Err(text(
                403,
                "the operations endpoints of a node listening beyond loopback need an admin \
                 token: start it with --admin-token-file FILE and send Authorization: Bearer <token>",
            )),
            (Some(_), _) => Err(text(
                401,
                "send the node's admin token as Authorization: Bearer <token> (see \
                 --admin-token-file)",
            )),
        }
    }

    /// A snapshot of the node.
    pub async fn status(&self, peers: &PeerContext) -> Result<Status, String> {
        let tree = self.root.tree().await.map_err(|e| e.to_string())?;
        let events = match self.events.lock() {
            Ok(e) => e.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let connections = peers
            .live_connections()
            .iter()
            .map(|c| ConnectionJson {
                peer: c.peer.to_string(),
                remote: c.remote.clone(),
                dialled: c.dialled,
                rights: c.rights().to_string(),
                lag: c
                    .lag()
                    .into_iter()
                    .map(|(k, n)| status::LagJson {
                        user: k.user.clone(),
                        cdvcs: k.id.to_string(),
                        commits: n,
                    })
                    .collect(),
                bytes_in: c.bytes_in.load(Ordering::Relaxed),
                bytes_out: c.bytes_out.load(Ordering::Relaxed),
                since_ms: c.since_ms,
            })
            .collect();
        let mut cdvcs = Vec::new();
        for key in self.replicas.keys().map_err(|e| e.to_string())? {
            // Replicas not started are read from the store, not started.
            let Some((heads, commits)) = self.replicas.summary(&key).map_err(|e| e.to_string())?
            else {
                continue;
            };
            cdvcs.push(CdvcsJson {
                user: key.user.clone(),
                id: key.id.to_string(),
                heads: heads.iter().map(|h| h.to_hex()).collect(),
                commits,
            });
        }
        let mut realizers: Vec<RealizerJson> = self
            .realizers
            .iter()
            .map(|(name, r)| realizer_json(name, r))
            .collect();
        realizers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Status {
            node: peers.public_key().to_string(),
            tree: status::tree_json(&tree, &events),
            connections,
            cdvcs,
            realizers,
            events: events.into_iter().collect(),
        })
    }
}

fn realizer_json(name: &str, r: &RealizerShared) -> RealizerJson {
    let status = r.status().borrow().clone();
    let (state, parked) = match status {
        RealizerStatus::Starting => ("starting", None),
        RealizerStatus::Applying { .. } => ("applying", None),
        RealizerStatus::Idle => ("idle", None),
        RealizerStatus::Waiting { .. } => ("waiting", None),
        RealizerStatus::Parked { commit, reason } => (
            "parked",
            Some(ParkedJson {
                skip: format!(
                    "replikativ realize-skip {} --commit {commit}",
                    if name == "postgres" {
                        "--postgres URL"
                    } else {
                        "--sqlite FILE"
                    }
                ),
                commit: commit.to_hex(),
                reason,
            }),
        ),
    };
    RealizerJson {
        name: name.to_owned(),
        cdvcs: r.replica.key.to_string(),
        state: state.to_owned(),
        applied_commits: r.applied_count() as u64,
        ops_applied: r.ops_applied(),
        parked,
    }
}

fn event_json(event: &SupervisionEvent) -> EventJson {
    EventJson {
        at_ms: crate::replica::now_ms(),
        supervisor: event.supervisor.to_string(),
        child: event.child().map(ToString::to_string),
        event: event.summary().to_owned(),
        generation: event.generation(),
        reason: event.reason().filter(|r| !r.is_normal()).map(|r| r.chain()),
    }
}

fn text(status: u16, body: &str) -> AdminResponse {
    AdminResponse {
        status,
        content_type: "text/plain; charset=utf-8",
        body: AdminBody::Text(format!("{body}\n")),
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
