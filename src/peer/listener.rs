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

use actix_http::{Extensions, HttpService};
use actix_service::map_config;
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::AppConfig;
use actix_web::rt::net::TcpStream;

use super::origin::UpgradeRules;
use super::server_socket::ServerSocket;
use super::tls::{ChannelBinding, TlsError};
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
    /// The TLS configuration could not be made.
    #[error("the listener's TLS configuration")]
    Tls(#[source] TlsError),
}

/// The actor owning the server.
pub struct ListenerActor {
    handle: ServerHandle,
    addrs: Vec<SocketAddr>,
}

impl ListenerActor {
    /// Binds `addr` and starts serving websockets at path `/`: over TLS (`wss://`, and HTTPS
    /// for the other paths) when the node has a certificate, else plain `ws://`.
    pub fn bind(node: Arc<PeerContext>, addr: &str) -> Result<ListenerActor, ListenError> {
        let bind_err = |source| ListenError::Bind {
            addr: addr.to_string(),
            source,
        };
        let data = web::Data::new(node.clone());
        // Known once bound (the port may be 0 until then); set before the server runs.
        let rules = web::Data::new(OnceLock::<UpgradeRules>::new());
        let (server, addrs, scheme) = match &node.tls().server {
            Some(tls) => {
                let config = tls.server_config().map_err(ListenError::Tls)?;
                let (server, addrs) =
                    serve_tls(data, rules.clone(), addr, config).map_err(bind_err)?;
                (server, addrs, "wss")
            }
            None => {
                let upgrade = rules.clone();
                let server = HttpServer::new(move || {
                    App::new().configure(routes(data.clone(), upgrade.clone()))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                // Small handshake messages must not wait for a delayed ACK (Nagle).
                .tcp_nodelay(true)
                .bind(addr)
                .map_err(bind_err)?;
                let addrs = server.addrs();
                (server.run(), addrs, "ws")
            }
        };
        let port = addrs.first().map_or(0, SocketAddr::port);
        let _ = rules.set(UpgradeRules::new(addr, port, node.trust.origins().to_vec()));
        let handle = server.handle();
        // Counted until the server has stopped and its workers let go of the context (and
        // with it the store): a node's shutdown waits for that, so the store closes cleanly.
        let running = node.servers.started();
        actix_rt::spawn(async move {
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "the websocket server stopped with an error");
            }
            drop(running);
        });
        if let Some(a) = addrs.first() {
            node.set_listen_addr(*a);
            tracing::info!(addr = %a, "serving peers at {scheme}://{a}/");
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

/// How many of a node's listener servers are still running (each incarnation of the listener
/// starts one; it stops some time after the actor does).
#[derive(Debug, Default)]
pub struct ServersRunning(Arc<tokio::sync::watch::Sender<usize>>);

/// One running server; dropped when it has stopped.
pub struct ServerRunning(Arc<tokio::sync::watch::Sender<usize>>);

impl Drop for ServerRunning {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl ServersRunning {
    fn started(&self) -> ServerRunning {
        self.0.send_modify(|n| *n += 1);
        ServerRunning(Arc::clone(&self.0))
    }

    /// Waits until every server has stopped, at most `limit`; whether they all did.
    pub async fn all_stopped(&self, limit: std::time::Duration) -> bool {
        let mut rx = self.0.subscribe();
        let stopped = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
        matches!(stopped, Ok(Ok(_)))
    }
}

/// The listener's routes: websockets at `/` (browser upgrades judged by `rules`), a hint
/// everywhere else.
fn routes(
    data: web::Data<Arc<PeerContext>>,
    rules: web::Data<OnceLock<UpgradeRules>>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(data)
            .app_data(rules)
            .route("/", web::get().to(accept))
            .default_service(web::to(admin_or_hint));
    }
}

/// Serves the routes over TLS with ALPN `http/1.1` only, recording each connection's channel
/// binding.
///
/// actix-web's `HttpServer::bind_rustls_0_23` puts `h2` first in ALPN whenever actix-http's
/// `http2` feature is on, and awc always turns it on; so the TLS listener is assembled from
/// actix-web's own parts (actix-server, actix-http's HTTP/1 service, the rustls acceptor) the
/// way `HttpServer` does it, with HTTP/1 only.
fn serve_tls(
    data: web::Data<Arc<PeerContext>>,
    rules: web::Data<OnceLock<UpgradeRules>>,
    addr: &str,
    mut config: rustls::ServerConfig,
) -> std::io::Result<(actix_web::dev::Server, Vec<SocketAddr>)> {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut builder = actix_server::Server::build()
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1);
    let mut addrs = Vec::new();
    for listener in tcp_listeners(addr)? {
        let local = listener.local_addr()?;
        addrs.push(local);
        let (data, rules, config) = (data.clone(), rules.clone(), config.clone());
        builder = builder.listen("replikativ-peers-tls", listener, move || {
            let app = App::new().configure(routes(data.clone(), rules.clone()));
            // What `HttpServer` gives an app on a TLS listener (`secure`: the connection
            // info says https); actix-web exposes this constructor only as hidden API.
            let app_config = AppConfig::__priv_test_new(true, local.to_string(), local);
            HttpService::build()
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .tcp_nodelay(true)
                .on_connect_ext(|io: &TlsStream<TcpStream>, ext: &mut Extensions| {
                    if let Some(binding) = ChannelBinding::of(io.get_ref().1) {
                        ext.insert(binding);
                    }
                })
                .h1(map_config(app, move |_| app_config.clone()))
                .rustls_0_23(config.clone())
        })?;
    }
    Ok((builder.run(), addrs))
}

/// Listening sockets on every address `addr` resolves to, with `SO_REUSEADDR` (as
/// `HttpServer::bind` makes them: a restarted node gets its port back at once).
fn tcp_listeners(addr: &str) -> std::io::Result<Vec<std::net::TcpListener>> {
    use std::net::ToSocketAddrs as _;
    let mut listeners = Vec::new();
    let mut last_err = None;
    for a in addr.to_socket_addrs()? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()
        } else {
            tokio::net::TcpSocket::new_v6()
        };
        let bound = socket.and_then(|s| {
            s.set_reuseaddr(true)?;
            // Inherited by accepted sockets (Linux): the TLS handshake's small writes too.
            s.set_nodelay(true)?;
            s.bind(a)?;
            s.listen(1024)
        });
        match bound.and_then(|l| l.into_std()) {
            Ok(l) => listeners.push(l),
            Err(e) => last_err = Some(e),
        }
    }
    match (listeners.is_empty(), last_err) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )),
        _ => Ok(listeners),
    }
}

/// The node's operations endpoints (`/healthz`, `/metrics`, `/status.json`, `/status`) and,
/// with `--web`, the browser peer's page (`/app`), under the same `Host` and `Origin` rules as
/// websocket upgrades; a hint everywhere else.
async fn admin_or_hint(
    req: HttpRequest,
    node: web::Data<Arc<PeerContext>>,
    rules: web::Data<OnceLock<UpgradeRules>>,
) -> HttpResponse {
    let hint = || HttpResponse::NotFound().body("replikativ peers speak websocket at path /\n");
    if req.method() != actix_web::http::Method::GET {
        return hint();
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
    };
    if let Some(Err(why)) = rules
        .get()
        .map(|r| r.check(header("origin"), header("host")))
    {
        return HttpResponse::Forbidden().body(format!("{why}\n"));
    }
    if let Some(page) = node.web().and_then(|app| app.serve(req.path())) {
        return page;
    }
    let Some(admin) = node.admin() else {
        return hint();
    };
    let bearer = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let request = crate::peer::live::AdminRequest {
        path: req.path().to_owned(),
        bearer,
        trusted: false,
    };
    match admin.handle(request).await {
        Some(answer) => crate::peer::live::into_http(answer),
        None => hint(),
    }
}

async fn accept(
    req: HttpRequest,
    stream: web::Payload,
    node: web::Data<Arc<PeerContext>>,
    rules: web::Data<OnceLock<UpgradeRules>>,
) -> Result<HttpResponse, actix_web::Error> {
    let node: Arc<PeerContext> = node.get_ref().clone();
    let binding = req.conn_data::<ChannelBinding>().copied();
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
                match pool.start_child(id, (out, binding, remote.clone())).await {
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
