//! What an operator sees of the node's connections, and the hook through which the listener
//! serves the operations endpoints (`/healthz`, `/metrics`, `/status.json`) beside the
//! websocket (DESIGN §14). The endpoints themselves are the node's ([`crate::ops`]): the peer
//! layer only routes requests to them.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::identity::PublicKey;
use crate::sync::Rights;

/// One authenticated connection, live.
#[derive(Debug)]
pub struct LiveConnection {
    /// The connection's number on this node.
    pub id: u64,
    /// The peer's proved key.
    pub peer: PublicKey,
    /// The socket's remote address (or the dialled URL).
    pub remote: String,
    /// Whether this node dialled it.
    pub dialled: bool,
    /// What the peer may do here (the allow file may change it while connected).
    pub rights: Mutex<Rights>,
    /// When it was admitted (ms since the Unix epoch).
    pub since_ms: i64,
    /// Frame bytes received on it.
    pub bytes_in: AtomicU64,
    /// Frame bytes sent on it.
    pub bytes_out: AtomicU64,
    /// Per shared CDVCS: commits this node holds that it has neither sent to the peer nor
    /// learned that the peer holds (updated about every second).
    pub lag: Mutex<BTreeMap<crate::crdt::CrdtKey, u64>>,
}

impl LiveConnection {
    /// A connection just admitted with `rights`.
    pub fn new(id: u64, peer: PublicKey, remote: String, dialled: bool, rights: Rights) -> Self {
        LiveConnection {
            id,
            peer,
            remote,
            dialled,
            rights: Mutex::new(rights),
            since_ms: crate::replica::now_ms(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            lag: Mutex::new(BTreeMap::new()),
        }
    }

    /// What the peer may do here now.
    pub fn rights(&self) -> Rights {
        match self.rights.lock() {
            Ok(r) => *r,
            Err(p) => *p.into_inner(),
        }
    }

    /// The lag per shared CDVCS, as last computed.
    pub fn lag(&self) -> BTreeMap<crate::crdt::CrdtKey, u64> {
        match self.lag.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Counts a received frame.
    pub fn received(&self, bytes: usize) {
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a sent frame.
    pub fn sent(&self, bytes: usize) {
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// The live connections by number.
#[derive(Debug, Default)]
pub struct LiveConnections {
    map: Mutex<BTreeMap<u64, Arc<LiveConnection>>>,
}

impl LiveConnections {
    /// Records an admitted connection (replacing an earlier session of the same number).
    pub fn add(&self, conn: LiveConnection) -> Arc<LiveConnection> {
        let conn = Arc::new(conn);
        if let Ok(mut map) = self.map.lock() {
            map.insert(conn.id, conn.clone());
        }
        conn
    }

    /// The connection ended.
    pub fn remove(&self, id: u64) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&id);
        }
    }

    /// The live connections, by number.
    pub fn snapshot(&self) -> Vec<Arc<LiveConnection>> {
        match self.map.lock() {
            Ok(map) => map.values().cloned().collect(),
            Err(p) => p.into_inner().values().cloned().collect(),
        }
    }
}

/// A request to an operations endpoint.
#[derive(Debug, Clone)]
pub struct AdminRequest {
    /// The path, e.g. `/metrics`.
    pub path: String,
    /// The `Authorization: Bearer …` token, if sent.
    pub bearer: Option<String>,
    /// Served inside an application that guards its routes itself (the node's own
    /// loopback-or-token rule does not apply).
    pub trusted: bool,
}

/// An answer of an operations endpoint.
pub struct AdminResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: AdminBody,
}

/// The body of an operations answer.
pub enum AdminBody {
    /// All of it.
    Text(String),
    /// Server-sent events: each item is sent as one `data:` event, as long as the client
    /// stays (for the live status page).
    Events(Pin<Box<dyn futures_util::Stream<Item = String>>>),
}

impl std::fmt::Debug for AdminResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminResponse")
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// The HTTP response of an operations answer.
pub fn into_http(answer: AdminResponse) -> actix_web::HttpResponse {
    let mut response = actix_web::HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answer.status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR),
    );
    response
        .content_type(answer.content_type)
        .insert_header(("cache-control", "no-store"));
    match answer.body {
        AdminBody::Text(text) => response.body(text),
        AdminBody::Events(events) => {
            use futures_util::StreamExt as _;
            response.streaming(events.map(|data| {
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(format!("data: {data}\n\n")))
            }))
        }
    }
}

/// The node's operations endpoints, as the listener calls them.
pub trait AdminService: Send + Sync + 'static {
    /// Answers `request`; `None` when the path is not an operations endpoint.
    fn handle(&self, request: AdminRequest)
    -> Pin<Box<dyn Future<Output = Option<AdminResponse>>>>;
}
