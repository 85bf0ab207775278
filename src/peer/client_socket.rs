//! The client side of a websocket (awc): dial, then frames in, frames out, heartbeats.
//!
//! awc's client is `!Send`: everything here runs on the current actix arbiter.

use std::time::Instant;

use actix::io::SinkWrite;
use actix::prelude::*;
use actix_codec::Framed;
use awc::BoxedSocket;
use awc::error::WsProtocolError;
use awc::ws;
use futures_util::stream::{SplitSink, StreamExt};

use super::socket::{HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT, Inbound, MAX_WS_FRAME, Outgoing};
use super::tls::{ChannelBinding, ClientTls};
use super::tls_connector::{Target, TlsDial};

/// Why a dial failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The URL is not a ws:// or wss:// URL this client can use.
    #[error("{url} is not a usable ws:// or wss:// URL: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting or the websocket handshake failed.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The URL dialled.
        url: String,
        /// awc's description.
        reason: String,
    },
    /// The TLS handshake failed (an untrusted or wrong certificate, a peer not speaking TLS).
    #[error("cannot connect to {url}: {reason}")]
    Tls {
        /// The URL dialled.
        url: String,
        /// What failed, as a person can act on it.
        reason: String,
    },
}

type WsSink = SplitSink<Framed<BoxedSocket, ws::Codec>, ws::Message>;

/// How long a closing socket waits for its last frames to be written.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// One dialled websocket.
pub struct ClientSocket {
    sink: SinkWrite<ws::Message, WsSink>,
    conn: Option<Recipient<Inbound>>,
    last_heard: Instant,
    /// Our close frame is out: nothing more is written.
    closing: bool,
    /// Dropped when the socket stops.
    watchers: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// Dials `url` (`ws://` or `wss://`, verified against `tls`) and starts a [`ClientSocket`]
/// whose frames go to the connection `make` builds; returns it with the TLS channel binding
/// (`None` over `ws://`).
pub async fn dial(
    url: &str,
    tls: &ClientTls,
    make: impl FnOnce(Recipient<Outgoing>) -> Recipient<Inbound>,
) -> Result<(Addr<ClientSocket>, Option<ChannelBinding>), DialError> {
    let connect_err = |e: &dyn std::fmt::Display| DialError::Connect {
        url: url.to_string(),
        reason: e.to_string(),
    };
    let connector = awc::Connector::new().timeout(DIAL_TIMEOUT);
    let (result, outcome) = if url.starts_with("wss://") {
        let target = Target::parse(url).map_err(|reason| DialError::BadUrl {
            url: url.to_string(),
            reason,
        })?;
        let tls_dial = TlsDial::new(tls.peers(), target.clone());
        let outcome = tls_dial.outcome();
        let client = awc::Client::builder()
            .timeout(DIAL_TIMEOUT)
            .connector(connector.connector(tls_dial))
            .finish();
        let result = client
            .ws(target.plain_url.as_str())
            .max_frame_size(MAX_WS_FRAME)
            .connect()
            .await;
        (result, Some(outcome))
    } else if url.starts_with("ws://") {
        let client = awc::Client::builder()
            .timeout(DIAL_TIMEOUT)
            .connector(connector)
            .finish();
        let result = client.ws(url).max_frame_size(MAX_WS_FRAME).connect().await;
        (result, None)
    } else {
        return Err(DialError::BadUrl {
            url: url.to_string(),
            reason: "it must start with ws:// or wss://".into(),
        });
    };
    let (binding, tls_error) = match outcome {
        Some(o) => {
            let mut o = o.borrow_mut();
            (o.binding.take(), o.tls_error.take())
        }
        None => (None, None),
    };
    let framed = match result {
        Ok((_resp, framed)) => framed,
        Err(e) => {
            if let Some(reason) = tls_error {
                return Err(DialError::Tls {
                    url: url.to_string(),
                    reason,
                });
            }
            return Err(match plain_to_tls_hint(url, &e) {
                Some(hint) => connect_err(&format!("{e} ({hint})")),
                None => connect_err(&e),
            });
        }
    };
    let (sink, stream) = framed.split();
    let socket = ClientSocket::create(|ctx| {
        ctx.add_stream(stream);
        let conn = make(ctx.address().recipient());
        ClientSocket {
            sink: SinkWrite::new(sink, ctx),
            conn: Some(conn),
            last_heard: Instant::now(),
            closing: false,
            watchers: Vec::new(),
        }
    });
    Ok((socket, binding))
}

/// How long connecting (TCP and TLS) and the websocket upgrade may take.
const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A hint for a `ws://` dial whose answer was not HTTP: the peer probably serves `wss://`.
fn plain_to_tls_hint(url: &str, e: &awc::error::WsClientError) -> Option<&'static str> {
    use awc::error::{SendRequestError, WsClientError};
    let not_http = matches!(
        e,
        WsClientError::SendRequest(SendRequestError::Http(_) | SendRequestError::Response(_))
    );
    (url.starts_with("ws://") && not_http)
        .then_some("the answer was not HTTP: does the peer serve wss://?")
}

impl ClientSocket {
    fn forward(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        let Some(conn) = self.conn.clone() else {
            return;
        };
        ctx.wait(conn.send(msg).into_actor(self).map(|res, act, ctx| {
            if res.is_err() {
                act.close("connection actor stopped", ctx);
            }
        }));
    }

    /// The websocket closing handshake: the close frame goes out after what is queued, and
    /// the connection stays open until the peer answers it (or ends the stream), at most
    /// [`CLOSE_GRACE`]. Closing the connection at once could lose a last `Error` saying why
    /// we close: a server that reads our frames together with the end of the connection may
    /// drop them.
    fn close(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if std::mem::replace(&mut self.closing, true) {
            return;
        }
        let _ = self.sink.write(ws::Message::Close(Some(ws::CloseReason {
            code: ws::CloseCode::Policy,
            description: Some(reason.chars().take(120).collect()),
        })));
        ctx.run_later(CLOSE_GRACE, |act, ctx| {
            act.sink.close();
            ctx.stop();
        });
    }

    fn report_closed(&mut self, why: String) {
        if let Some(conn) = self.conn.take() {
            conn.do_send(Inbound::Closed(why));
        }
    }
}

impl Actor for ClientSocket {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(HEARTBEAT_INTERVAL, |act, ctx| {
            if act.closing {
                // Waiting for the peer to answer our close frame.
            } else if act.last_heard.elapsed() > HEARTBEAT_TIMEOUT {
                act.report_closed("heartbeat timeout".into());
                act.close("heartbeat timeout", ctx);
            } else {
                let _ = act.sink.write(ws::Message::Ping(bytes::Bytes::new()));
            }
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.report_closed("socket closed".into());
    }
}

impl actix::io::WriteHandler<WsProtocolError> for ClientSocket {}

impl StreamHandler<Result<ws::Frame, WsProtocolError>> for ClientSocket {
    fn handle(&mut self, item: Result<ws::Frame, WsProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match item {
            Ok(ws::Frame::Binary(bytes)) => self.forward(Inbound::Frame(bytes), ctx),
            Ok(ws::Frame::Text(_)) => self.forward(Inbound::TextFrame, ctx),
            Ok(ws::Frame::Ping(p)) => {
                let _ = self.sink.write(ws::Message::Pong(p));
            }
            Ok(ws::Frame::Pong(_)) => {}
            Ok(ws::Frame::Continuation(_)) => {
                self.report_closed("fragmented frames are not part of the protocol".into());
                self.close("fragmented frames are not part of the protocol", ctx);
            }
            Ok(ws::Frame::Close(reason)) => {
                let why = reason
                    .and_then(|r| r.description)
                    .unwrap_or_else(|| "peer closed".into());
                self.report_closed(why);
                ctx.stop();
            }
            Err(e) => {
                let why = format!("websocket protocol error: {e}");
                self.report_closed(why.clone());
                self.close(&why, ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.report_closed("stream ended".into());
        ctx.stop();
    }
}

impl Handler<Outgoing> for ClientSocket {
    type Result = ();

    fn handle(&mut self, msg: Outgoing, ctx: &mut Self::Context) {
        match msg {
            Outgoing::Frame(_) if self.closing => {}
            Outgoing::Frame(bytes) => {
                if self.sink.write(ws::Message::Binary(bytes.into())).is_err() {
                    self.report_closed("socket is closed".into());
                    ctx.stop();
                }
            }
            Outgoing::Close(reason) => {
                self.conn = None;
                self.close(&reason, ctx);
            }
            Outgoing::Watch(watcher) => self.watchers.push(watcher),
        }
    }
}

/// How a dialler retries: 100 ms doubling to 5 s, ±50 % jitter (the first redial after a
/// drop is immediate).
pub fn dial_policy() -> replikativ_actors::BackoffPolicy {
    replikativ_actors::BackoffPolicy::exponential(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(5),
    )
    .jitter(0.5)
}
