//! The embedding API of trust (DESIGN §11): which keys may read and write on the node,
//! `open` reads, allowed browser origins, and re-reading the allow file on a running node.

use std::path::PathBuf;

use super::{Node, NodeBuilder};
use crate::identity::PublicKey;
use crate::peer::trust::{Reloaded, TrustError};
use crate::sync::Rights;

impl NodeBuilder {
    /// Gives the peer `key` `rights` on this node (besides any it has). With any rule, keys
    /// without one are refused (see [`peer::rights`](crate::peer::rights)).
    pub fn allow(mut self, key: PublicKey, rights: Rights) -> Self {
        self.trust.allow(key, rights);
        self
    }

    /// Reads rules from this allow file at start (an invalid one fails the start) and at each
    /// [`Node::reload_rules`].
    pub fn allow_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.trust.allow_file(path.into());
        self
    }

    /// Lets every key read: without rules, the way to listen beyond loopback.
    pub fn open(mut self, open: bool) -> Self {
        self.trust.open(open);
        self
    }

    /// The bearer token the operations endpoints (`/healthz`, `/metrics`, `/status.json`)
    /// require when the node listens beyond loopback (without one they stay closed there).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Lets web pages of `origin` (`scheme://host[:port]`) open websockets to the node.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.trust.allow_origin(origin.into());
        self
    }
}

impl Node {
    /// Re-reads the allow file: added keys are admitted, removed or downgraded keys lose
    /// those rights on live connections too. An invalid file keeps the rules in force.
    pub fn reload_rules(&self) -> Result<Reloaded, TrustError> {
        self.peers.trust().reload()
    }
}
