//! TLS in the embedding API: a node's listener certificate and the roots its dialled peers are
//! verified against (DESIGN §11).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use replikativ::node::Node;
//! use replikativ::peer::tls::{ClientTls, ServerTls};
//! let node = Node::builder()
//!     .listen("0.0.0.0:8443")
//!     .tls_server(ServerTls::load("fullchain.pem", "privkey.pem")?)
//!     .connect("wss://peer.example.org:8443/")
//!     .tls_client(ClientTls::with_cas(&["my-ca.pem"])?)
//!     .start()
//!     .await?;
//! # Ok(()) }
//! ```

use super::{Node, NodeBuilder};
use crate::peer::tls::{ClientTls, ServerTls, TlsError};

impl NodeBuilder {
    /// Serve `wss://` (and HTTPS) on the listener with this certificate chain and key.
    pub fn tls_server(mut self, server: ServerTls) -> Self {
        self.tls.server = Some(server);
        self
    }

    /// Verify `wss://` peers against these roots (default: the system's only).
    pub fn tls_client(mut self, client: ClientTls) -> Self {
        self.tls.client = client;
        self
    }
}

impl Node {
    /// Reads the listener's certificate and key files again (after a renewal): new TLS
    /// connections use them, live ones keep theirs. `Ok(false)`: the node serves no TLS. On
    /// an error the pair in use stays.
    pub fn reload_tls(&self) -> Result<bool, TlsError> {
        match &self.peers.tls().server {
            Some(server) => server.reload().map(|()| true),
            None => Ok(false),
        }
    }
}
