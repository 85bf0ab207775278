//! Peers: the websocket server and client, and the connection actor that replicates over them.
//!
//! - [`socket`]: what crosses between a websocket and its connection actor.
//! - [`server_socket`] (actix-web-actors) and [`client_socket`] (awc): thin socket actors.
//! - [`connection`]: [`ConnectionActor`](connection::ConnectionActor), the protocol driver.
//! - [`graphs`]: the sync session's view of the node's replicas.
//! - [`listener`]: the server, as a supervised actor.
pub mod client_socket;
pub mod connection;
pub mod graphs;
pub mod listener;
pub mod server_socket;
pub mod socket;
