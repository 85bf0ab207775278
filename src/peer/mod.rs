//! Peers: the websocket server and client, and the connection actor that replicates over them.
//!
//! - [`socket`]: what crosses between a websocket and its connection actor.
//! - [`server_socket`] (actix-web-actors) and [`client_socket`] (awc): thin socket actors;
//!   [`frame_guard`] refuses oversized frames at their header on the server side.
//! - [`connection`]: [`ConnectionActor`](connection::ConnectionActor), the protocol driver;
//!   [`outgoing`] loads what its flow control sends.
//! - [`graphs`]: the sync session's view of the node's replicas.
//! - [`listener`]: the server, as a supervised actor; [`origin`] decides which browser
//!   upgrades it accepts.
//! - [`tls`]: certificates, verification roots and the channel binding; [`tls_connector`]
//!   dials `wss://` so that the dialler keeps the binding.
//! - [`rights`]: who may do what (the pure policy); [`trust`]: the node's live policy,
//!   re-read on demand.
//! - [`live`]: the authenticated connections as operators see them, and the hook for the
//!   node's operations endpoints.
pub mod client_socket;
pub mod connection;
pub mod context;
pub mod frame_guard;
pub mod graphs;
pub mod listener;
pub mod live;
pub mod origin;
pub mod outgoing;
pub mod rights;
pub mod server_socket;
pub mod socket;
pub mod tls;
pub mod tls_connector;
pub mod trust;
pub mod web_app;
