//! The server side of a websocket (actix-web-actors): frames in, frames out, heartbeats.
//!
//! actix-web-actors is deprecated upstream in favour of actix-ws; it is kept behind this one
//! file so that a swap touches nothing else.

use std::time::Instant;

use actix::prelude::*;
use actix_web_actors::ws;

use super::frame_guard::FrameGuard;
use super::socket::{HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Inbound, MAX_WS_FRAME, Outgoing};

/// Builds the connection actor for a new socket, given where its outgoing frames go.
pub type ConnectionFactory = Box<
    dyn FnOnce(
        Recipient<Outgoing>,
    ) -> futures_util::future::LocalBoxFuture<'static, Option<Recipient<Inbound>>>,
>;

/// One accepted websocket.
pub struct ServerSocket {
    factory: Option<ConnectionFactory>,
    conn: Option<Recipient<Inbound>>,
    last_heard: Instant,
    closed: bool,
}

impl ServerSocket {
    /// A socket whose connection actor `factory` starts once the handshake is done.
    pub fn new(factory: ConnectionFactory) -> ServerSocket {
        ServerSocket {
            factory: Some(factory),
            conn: None,
            last_heard: Instant::now(),
            closed: false,
        }
    }

    /// Upgrades an HTTP request to a websocket served by a new [`ServerSocket`].
    pub fn start(
        factory: ConnectionFactory,
        req: &actix_web::HttpRequest,
        stream: actix_web::web::Payload,
    ) -> Result<actix_web::HttpResponse, actix_web::Error> {
        // The guard refuses an oversized frame at its header, before actix buffers it.
        let stream = FrameGuard::new(stream, MAX_WS_FRAME);
        ws::WsResponseBuilder::new(ServerSocket::new(factory), req, stream)
            .frame_size(MAX_WS_FRAME)
            .start()
    }

    fn forward(&mut self, msg: Inbound, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(conn) = self.conn.clone() else {
            return;
        };
        // Wait until the connection actor has taken this frame before reading the next one.
        ctx.wait(conn.send(msg).into_actor(self).map(|res, act, ctx| {
            if res.is_err() {
                act.close("connection actor stopped", ctx);
            }
        }));
    }

    fn close(&mut self, reason: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.closed {
            self.closed = true;
            ctx.close(Some(ws::CloseReason {
                code: ws::CloseCode::Policy,
                description: Some(reason.chars().take(120).collect()),
            }));
        }
        ctx.stop();
    }
}

impl Actor for ServerSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some(factory) = self.factory.take() {
            // Read nothing until the connection actor exists.
            ctx.wait(
                factory(ctx.address().recipient())
                    .into_actor(self)
                    .map(|conn, act, ctx| {
                        act.conn = conn;
                        if act.conn.is_none() {
                            act.close("the node is shutting down", ctx);
                        }
                    }),
            );
        }
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.last_heard.elapsed() > HEARTBEAT_TIMEOUT {
                tracing::warn!("peer silent for {:?}; closing", HEARTBEAT_TIMEOUT);
                if let Some(conn) = &act.conn {
                    conn.do_send(Inbound::Closed("heartbeat timeout".into()));
                }
                act.close("heartbeat timeout", ctx);
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let Some(conn) = self.conn.take() {
            conn.do_send(Inbound::Closed("socket closed".into()));
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for ServerSocket {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(ws::Message::Binary(bytes)) => self.forward(Inbound::Frame(bytes), ctx),
            Ok(ws::Message::Text(_)) => self.forward(Inbound::TextFrame, ctx),
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Continuation(_)) => {
                self.close("fragmented frames are not part of the protocol", ctx)
            }
            Ok(ws::Message::Close(reason)) => {
                let why = reason
                    .and_then(|r| r.description)
                    .unwrap_or_else(|| "peer closed".into());
                if let Some(conn) = self.conn.take() {
                    conn.do_send(Inbound::Closed(why));
                }
                ctx.stop();
            }
            Err(e) => {
                let why = format!("websocket protocol error: {e}");
                tracing::debug!("{why}");
                if let Some(conn) = self.conn.take() {
                    conn.do_send(Inbound::Closed(why.clone()));
                }
                self.close(&why, ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Outgoing> for ServerSocket {
    type Result = ();

    fn handle(&mut self, msg: Outgoing, ctx: &mut Self::Context) {
        match msg {
            Outgoing::Frame(bytes) => ctx.binary(bytes),
            Outgoing::Close(reason) => {
                self.conn = None;
                self.close(&reason, ctx);
            }
            Outgoing::Watch(_) => {}
        }
    }
}
