//! Peers: the websocket server and client, and the connection actor that replicates over them.
pub mod client_socket;
pub mod server_socket;
pub mod socket;
