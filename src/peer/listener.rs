//! `ListenerActor`: owns the websocket server (actix-web) on the node's `--listen` address.
//!
//! Binding happens in the child's factory, so an address in use is a `StartFailed` exit that
//! names the address. Every accepted websocket becomes a `Temporary` child of the node's
//! connections pool. Stopping the actor stops the server.

use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use actix_tls::accept::rustls_0_23::TlsStream;

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
        let data = web::Data::new(node.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/", web::get().to(accept))
                .default_service(web::to(|| async {
                    HttpResponse::NotFound().body("replikativ peers speak websocket at path /\n")
                }))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        // The TLS channel binding of each connection, for its websocket (see `accept`).
        .on_connect(|conn, ext| {
            if let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>()
                && let Some(binding) = ChannelBinding::of(tls.get_ref().1)
            {
                ext.insert(binding);
            }
        });
        let bind_err = |source| ListenError::Bind {
            addr: addr.to_string(),
            source,
        };
        let (server, scheme) = match &node.tls().server {
            Some(tls) => {
                let config = tls.server_config().map_err(ListenError::Tls)?;
                (
                    server.bind_rustls_0_23(addr, config).map_err(bind_err)?,
                    "wss",
                )
            }
            None => (server.bind(addr).map_err(bind_err)?, "ws"),
        };
        let addrs = server.addrs();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
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

async fn accept(
    req: HttpRequest,
    stream: web::Payload,
    node: web::Data<Arc<PeerContext>>,
) -> Result<HttpResponse, actix_web::Error> {
    let node: Arc<PeerContext> = node.get_ref().clone();
    let binding = req.conn_data::<ChannelBinding>().copied();
    let remote = req
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    ServerSocket::start(
        Box::new(move |out| {
            Box::pin(async move {
                let pool = node.connections().await?;
                let id = format!("conn-{}", node.next_connection_id());
                match pool.start_child(id, (out, binding)).await {
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
