//! What crosses between a websocket and the connection actor that speaks the protocol over it.
//!
//! Both the server side (actix-web-actors) and the client side (awc) are thin socket actors that
//! turn websocket frames into [`Inbound`] messages and [`Outgoing`] messages into frames, so the
//! [`ConnectionActor`](super::connection::ConnectionActor) is the same on both sides. Reads are
//! backpressured: a socket waits until the connection actor has accepted a frame before it reads
//! the next one.

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;

/// The largest websocket frame either side accepts (the protocol's own frame limit plus room).
pub const MAX_WS_FRAME: usize = 17 * 1024 * 1024;
/// How often a socket pings its peer.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// A socket that has heard nothing (no frame, no pong) for this long is closed as dead.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(30);

/// From a socket to its connection actor.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum Inbound {
    /// One binary frame: one protocol message.
    Frame(Bytes),
    /// The peer sent a text frame (the protocol is binary only).
    TextFrame,
    /// The socket closed, with a reason when one is known.
    Closed(String),
}

/// From a connection actor to its socket.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum Outgoing {
    /// Send one binary frame.
    Frame(Vec<u8>),
    /// Close the websocket with this reason, then stop.
    Close(String),
    /// Drop this sender once the socket has stopped (after the peer answered our close, so
    /// it has read our last frames), or at once if the socket does not wait for that.
    Watch(tokio::sync::oneshot::Sender<()>),
}
