//! `ListenerActor`: owns the websocket server (actix-web) on the node's `--listen` address.
//!
//! Binding happens in the child's factory, so an address in use is a `StartFailed` exit that
//! names the address. An upgrade from a web page is refused (HTTP 403, saying why) unless
//! [`UpgradeRules`] accept its `Origin` and `Host`. Every accepted websocket becomes a
//! `Temporary` child of the node's connections pool. Stopping the actor stops the server.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use super::origin::UpgradeRules;
use super::server_socket::ServerSocket;
use crate::peer::context::PeerContext;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// Binding the address failed (in use, not local, malformed).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address given.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The actor owning the server.
pub struct ListenerActor {
    handle: ServerHandle,
    addrs: Vec<SocketAddr>,
}

impl ListenerActor {
    /// Binds `addr` and starts serving websockets at path `/`.
    pub fn bind(node: Arc<PeerContext>, addr: &str) -> Result<ListenerActor, ListenError> {
        let data = web::Data::new(node.clone());
        // Known once bound (the port may be 0 until then); set before the server runs.
        let rules = web::Data::new(OnceLock::<UpgradeRules>::new());
        let upgrade = rules.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(upgrade.clone())
                .route("/", web::get().to(accept))
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().body("replikativ peers speak websocket at path /\n")
                }))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(addr)
        .map_err(|source| ListenError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let addrs = server.addrs();
        let port = addrs.first().map_or(0, SocketAddr::port);
        let _ = rules.set(UpgradeRules::new(addr, port, node.trust.origins().to_vec()));
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        if let Some(a) = addrs.first() {
            node.set_listen_addr(*a);
            tracing::info!(addr = %a, "serving peers at ws://{a}/");
        }
        Ok(ListenerActor { handle, addrs })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl Actor for ListenerActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let handle = self.handle.clone();
        actix_rt::spawn(async move { handle.stop(true).await });
    }
}

async fn accept(
    req: HttpRequest,
    stream: web::Payload,
    node: web::Data<Arc<PeerContext>>,
    rules: web::Data<OnceLock<UpgradeRules>>,
) -> Result<HttpResponse, actix_web::Error> {
    let node: Arc<PeerContext> = node.get_ref().clone();
    let remote = req
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    // A header that is not text counts as present: it cannot name this node.
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
    };
    let verdict = match rules.get() {
        Some(rules) => rules.check(header("origin"), header("host")),
        None => Err("the listener is not bound yet".to_string()),
    };
    if let Err(why) = verdict {
        tracing::warn!(%remote, "refused a websocket upgrade: {why}");
        return Ok(HttpResponse::Forbidden().body(format!("{why}\n")));
    }
    ServerSocket::start(
        Box::new(move |out| {
            Box::pin(async move {
                let pool = node.connections().await?;
                let id = format!("conn-{}", node.next_connection_id());
                match pool.start_child(id, out).await {
                    Ok(addr) => {
                        tracing::debug!(%remote, "accepted a peer");
                        Some(addr.recipient())
                    }
                    Err(e) => {
                        tracing::warn!(%remote, "cannot start a connection: {e}");
                        None
                    }
                }
            })
        }),
        &req,
        stream,
    )
}
