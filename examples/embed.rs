//! A replikativ node embedded in an actix-web service: notes are committed to a CDVCS,
//! realized exactly once into a SQLite table, and listed from there; the node's supervision
//! tree and its recent supervision events are shown over HTTP.
//!
//! ```text
//! cargo run --example embed -- [DIR] [HTTP_ADDR] [PEER_LISTEN_ADDR]
//!   DIR               store and SQLite file (default ./replikativ-embed)
//!   HTTP_ADDR         the HTTP service (default 127.0.0.1:8088)
//!   PEER_LISTEN_ADDR  websocket for other replikativ peers (default 127.0.0.1:0, any port)
//! ```
//!
//! TLS (README "Running across machines"), from the environment:
//!
//! | variable                          | what                                                   |
//! |-----------------------------------|--------------------------------------------------------|
//! | `EMBED_TLS_CERT`, `EMBED_TLS_KEY` | serve peers `wss://` with this PEM chain and key       |
//! | `EMBED_CONNECT`                   | also keep in sync with this peer (`ws://` or `wss://`) |
//! | `EMBED_CA`                        | trust this CA (PEM) for `wss://` peers, besides the system's |
//! | `EMBED_KEY`                       | the node's secret key (PKCS#8 PEM; default: `node.key` in its store) |
//! | `EMBED_ALLOW`                     | keys (`ed25519:…`, comma-separated) that may read and write here; with any, others are refused |
//!
//! Endpoints:
//!
//! | method and path               | what                                                          |
//! |-------------------------------|---------------------------------------------------------------|
//! | `POST /notes`                 | body `{"author":"..","text":".."}`: one `add-note` commit; answers `201 {"commit":ID,"realized":bool}` once it is durable (and, within 5 s, realized) |
//! | `GET /notes`                  | `[{"commit":ID,"author":..,"text":..}]` from the realized SQLite table `notes`, oldest first |
//! | `GET /realizer`               | `{"status":"idle"/..,"applied":N}` the realizer's state       |
//! | `GET /supervision/tree`       | the node's supervision tree as text                           |
//! | `GET /supervision/events`     | the last 200 supervision events as JSON, oldest first         |
//! | `GET /ops/status`             | the node's live status page (also `/ops/status.json`, `/ops/metrics`, `/ops/healthz`) |
//! | `GET http://PEER_LISTEN_ADDR/app/` | the browser peer: the notes replicated into the browser, verified, kept offline (on the peer listener, whose websocket it uses) |
//!
//! Try it:
//! ```text
//! curl -s -XPOST localhost:8088/notes -H 'content-type: application/json' \
//!      -d '{"author":"ada","text":"hello"}'
//! curl -s localhost:8088/notes
//! curl -s localhost:8088/supervision/tree
//! ```
//! Other peers can replicate the notes: `replikativ peer --store D --listen H:P --connect
//! ws://PEER_LISTEN_ADDR/` (the CDVCS is `mail:notes@example.com` /
//! `4b1d3c3e-9c1a-4e0f-8a63-0d7e0c0f1e55`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;
use replikativ::crdt::CrdtKey;
use replikativ::identity::{KeyFiles as _, Keypair, PublicKey};
use replikativ::node::{Node, RealizerSpec};
use replikativ::peer::tls::{ClientTls, ServerTls};
use replikativ::realize::realizer::{ConflictPolicy, RealizerShared, RealizerStatus};
use replikativ::realize::{HandlerError, Sink, SinkError, SqliteSink};
use replikativ::sync::Rights;
use replikativ::{Id, Stage};
use replikativ_actors::{EventKind, SupervisionEvent, SupervisorHandle};
use serde_json::{Value, json};

/// How many supervision events `GET /supervision/events` keeps.
const RECENT_EVENTS: usize = 200;
/// How long `POST /notes` waits for its note to be realized before answering anyway.
const REALIZE_WAIT: Duration = Duration::from_secs(5);
/// The CDVCS holding the notes.
const NOTES_CDVCS: &str = "4b1d3c3e-9c1a-4e0f-8a63-0d7e0c0f1e55";
/// The op of one note.
const ADD_NOTE: &str = "add-note";

const NOTES_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    author TEXT NOT NULL,
    text   TEXT NOT NULL
);";

/// The notes CDVCS key.
pub fn notes_key() -> CrdtKey {
    CrdtKey::new(
        "mail:notes@example.com",
        NOTES_CDVCS.parse().unwrap_or_default(),
    )
}

/// The `add-note` handler: one row per op (inside the sink's transaction, with its checkpoint).
fn add_note(tx: &rusqlite::Transaction<'_>, note: &Value) -> Result<(), HandlerError> {
    let field = |k: &str| {
        note.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| HandlerError::Invalid {
                reason: format!("a note needs a string {k}"),
            })
    };
    tx.execute(
        "INSERT INTO notes (author, text) VALUES (?1, ?2)",
        [field("author")?, field("text")?],
    )?;
    Ok(())
}

fn open_notes(path: &Path) -> Result<SqliteSink, SinkError> {
    Ok(SqliteSink::open(path)?
        .with_schema(NOTES_SCHEMA)?
        .handler(ADD_NOTE, add_note))
}

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct Service {
    stage: Stage,
    key: CrdtKey,
    sqlite: PathBuf,
    root: SupervisorHandle,
    realizer: Arc<RealizerShared>,
    events: Arc<Mutex<VecDeque<Value>>>,
}

/// A running embedded node and its HTTP service.
pub struct Embedded {
    /// The node.
    pub node: Node,
    /// Where the HTTP service listens.
    pub http: SocketAddr,
    /// The HTTP server (stop it with `server.stop(true).await`).
    pub server: actix_web::dev::ServerHandle,
}

fn event_json(ev: &SupervisionEvent) -> Value {
    let (what, generation) = match &ev.kind {
        EventKind::ChildStarted { generation, .. } => ("started", Some(*generation)),
        EventKind::ChildRestarted { generation, .. } => ("restarted", Some(*generation)),
        EventKind::ChildStartFailed { generation, .. } => ("start failed", Some(*generation)),
        EventKind::ChildExited { generation, .. } => ("exited", Some(*generation)),
        EventKind::ChildTerminated { generation, .. } => ("terminated", Some(*generation)),
        EventKind::RestartScheduled { generation, .. } => ("restart scheduled", Some(*generation)),
        EventKind::IntensityExceeded { generation, .. } => ("gave up", Some(*generation)),
        EventKind::AutoShutdownTriggered { generation, .. } => ("auto shutdown", Some(*generation)),
        EventKind::SupervisorStopped { .. } => ("supervisor stopped", None),
        _ => ("other", None),
    };
    json!({
        "supervisor": &*ev.supervisor,
        "child": ev.child().map(|c| c.to_string()),
        "event": what,
        "generation": generation,
        "reason": ev.reason().map(|r| {
            let chain = r.chain();
            if chain.is_empty() { r.to_string() } else { format!("{r}: {}", chain.join(": ")) }
        }),
    })
}

/// How the node meets its peers besides listening on plain `ws://`.
#[derive(Default)]
pub struct PeerOptions {
    /// Serve `wss://` with this certificate and key.
    pub tls: Option<ServerTls>,
    /// What `wss://` peers are verified against (default: the system's CAs).
    pub trust: ClientTls,
    /// A peer to keep in sync with.
    pub connect: Option<String>,
    /// The node's key (default: `node.key` in its store directory).
    pub key: Option<Keypair>,
    /// Keys that may read and write on this node (none: today's loopback defaults).
    pub allow: Vec<PublicKey>,
}

impl PeerOptions {
    /// From `EMBED_TLS_CERT`, `EMBED_TLS_KEY`, `EMBED_CONNECT`, `EMBED_CA`, `EMBED_KEY` and
    /// `EMBED_ALLOW`.
    pub fn from_env() -> anyhow::Result<PeerOptions> {
        let var = |name| std::env::var_os(name).map(PathBuf::from);
        let tls = match (var("EMBED_TLS_CERT"), var("EMBED_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(ServerTls::load(cert, key)?),
            (None, None) => None,
            _ => anyhow::bail!("EMBED_TLS_CERT and EMBED_TLS_KEY go together"),
        };
        let cas: Vec<PathBuf> = var("EMBED_CA").into_iter().collect();
        let key = match var("EMBED_KEY") {
            Some(path) => Some(Keypair::read(&path).context("reading EMBED_KEY")?),
            None => None,
        };
        let allow = std::env::var("EMBED_ALLOW")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|k| k.parse::<PublicKey>().context("EMBED_ALLOW"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(PeerOptions {
            tls,
            trust: ClientTls::with_cas(&cas)?,
            connect: std::env::var("EMBED_CONNECT").ok(),
            key,
            allow,
        })
    }
}

/// Starts a node with its store and SQLite file under `dir` (peers may connect on
/// `peer_listen`), and the HTTP service on `http`.
pub async fn start(dir: &Path, http: &str, peer_listen: &str) -> anyhow::Result<Embedded> {
    start_with(dir, http, peer_listen, PeerOptions::default()).await
}

/// [`start`] with TLS and a peer to dial.
pub async fn start_with(
    dir: &Path,
    http: &str,
    peer_listen: &str,
    peers: PeerOptions,
) -> anyhow::Result<Embedded> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = notes_key();
    let sqlite = dir.join("notes.sqlite");
    let path = sqlite.clone();
    let mut builder = Node::builder()
        .name("embed")
        .store_dir(dir.join("store"))
        .listen(peer_listen)
        // The browser peer's page at /app/ of the peer listener, replicating the notes.
        .web(key.clone())
        .tls_client(peers.trust);
    if let Some(tls) = peers.tls {
        builder = builder.tls_server(tls);
    }
    if let Some(url) = peers.connect {
        builder = builder.connect(url);
    }
    if let Some(key) = peers.key {
        builder = builder.key(key);
    }
    for key in peers.allow {
        builder = builder.allow(key, Rights::ALL);
    }
    let node = builder
        .realize(RealizerSpec {
            name: "notes".into(),
            key: key.clone(),
            open: Arc::new(move || -> Result<Box<dyn Sink>, SinkError> {
                Ok(Box::new(open_notes(&path)?))
            }),
            policy: ConflictPolicy::Union,
        })
        .start()
        .await
        .context("starting the node")?;

    // Keep the most recent supervision events for `GET /supervision/events`.
    let events = Arc::new(Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)));
    let mut rx = node.events();
    let sink = events.clone();
    actix_rt::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let item = match rx.recv().await {
                Ok(ev) => event_json(&ev),
                Err(RecvError::Lagged(n)) => json!({"event": "missed", "count": n}),
                Err(RecvError::Closed) => break,
            };
            if let Ok(mut q) = sink.lock() {
                if q.len() == RECENT_EVENTS {
                    q.pop_front();
                }
                q.push_back(item);
            }
        }
    });

    let service = Service {
        stage: node.stage(),
        key,
        sqlite,
        root: node.supervisor().clone(),
        realizer: node.realizer("notes").context("the realizer is missing")?,
        events,
    };
    let ops = node.ops().clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(service.clone()))
            // The node's status page and metrics, guarded as this app guards its routes.
            .service(web::scope("/ops").configure(replikativ::ops::mount::configure(ops.clone())))
            .route("/notes", web::post().to(post_note))
            .route("/notes", web::get().to(list_notes))
            .route("/realizer", web::get().to(realizer_status))
            .route("/supervision/tree", web::get().to(tree))
            .route("/supervision/events", web::get().to(recent_events))
    })
    .workers(1)
    .bind(http)
    .with_context(|| format!("binding the HTTP service to {http}"))?;
    let addr = *server
        .addrs()
        .first()
        .context("the HTTP server has no address")?;
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    Ok(Embedded {
        node,
        http: addr,
        server: handle,
    })
}

fn error(status: actix_web::http::StatusCode, e: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": e.to_string() }))
}

async fn post_note(svc: web::Data<Service>, body: web::Json<Value>) -> HttpResponse {
    let (Some(author), Some(text)) = (
        body.get("author").and_then(Value::as_str),
        body.get("text").and_then(Value::as_str),
    ) else {
        return error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "a note is {\"author\": string, \"text\": string}",
        );
    };
    let params = replikativ::tweets::encode_params(&json!({"author": author, "text": text}));
    let commit = match svc
        .stage
        .transact(&svc.key, vec![(ADD_NOTE.to_string(), params)])
        .await
    {
        Ok(id) => id,
        Err(e) => {
            return error(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                replikativ::realize::realizer::error_chain(&e),
            );
        }
    };
    let realized = wait_realized(&svc.realizer, &commit).await;
    HttpResponse::Created().json(json!({ "commit": commit.to_string(), "realized": realized }))
}

/// Read-your-writes: wait (bounded) until the realizer has applied `commit`.
async fn wait_realized(realizer: &RealizerShared, commit: &Id) -> bool {
    let mut status = realizer.status();
    let deadline = tokio::time::sleep(REALIZE_WAIT);
    tokio::pin!(deadline);
    loop {
        if realizer.is_applied(commit) {
            return true;
        }
        tokio::select! {
            _ = &mut deadline => return realizer.is_applied(commit),
            changed = status.changed() => if changed.is_err() { return false },
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
        }
    }
}

async fn list_notes(svc: web::Data<Service>) -> HttpResponse {
    let path = svc.sqlite.clone();
    let rows = web::block(move || -> rusqlite::Result<Vec<Value>> {
        let conn = rusqlite::Connection::open(&path)?;
        let mut stmt = conn.prepare("SELECT author, text FROM notes ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok(json!({"author": r.get::<_, String>(0)?, "text": r.get::<_, String>(1)?}))
        })?;
        rows.collect()
    })
    .await;
    match rows {
        Ok(Ok(rows)) => HttpResponse::Ok().json(rows),
        Ok(Err(e)) => error(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn realizer_status(svc: web::Data<Service>) -> HttpResponse {
    let status = match &*svc.realizer.status().borrow() {
        RealizerStatus::Starting => json!("starting"),
        RealizerStatus::Applying { pending } => json!({"applying": pending}),
        RealizerStatus::Idle => json!("idle"),
        RealizerStatus::Waiting { heads } => {
            json!({"waiting": heads.iter().map(Id::to_string).collect::<Vec<_>>()})
        }
        RealizerStatus::Parked { commit, reason } => {
            json!({"parked": commit.to_string(), "reason": reason})
        }
    };
    HttpResponse::Ok().json(json!({"status": status, "applied": svc.realizer.applied_count()}))
}

async fn tree(svc: web::Data<Service>) -> HttpResponse {
    match svc.root.tree().await {
        Ok(tree) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(tree.to_string()),
        Err(e) => error(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn recent_events(svc: web::Data<Service>) -> HttpResponse {
    let events: Vec<Value> = svc
        .events
        .lock()
        .map(|q| q.iter().cloned().collect())
        .unwrap_or_default();
    HttpResponse::Ok().json(events)
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "replikativ-embed".into()));
    let http = args.next().unwrap_or_else(|| "127.0.0.1:8088".into());
    let peers = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let options = PeerOptions::from_env()?;
    let scheme = if options.tls.is_some() { "wss" } else { "ws" };
    let embedded = start_with(&dir, &http, &peers, options).await?;
    eprintln!(
        "notes service on http://{} (peers: {scheme}://{}/), data in {}",
        embedded.http,
        embedded
            .node
            .listen_addr()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        dir.display()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    embedded.server.stop(true).await;
    embedded.node.shutdown().await;
    Ok(())
}
