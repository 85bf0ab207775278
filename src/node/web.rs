//! The embedding API of the browser peer's page (DESIGN §15).

use super::NodeBuilder;
use crate::crdt::CrdtKey;

impl NodeBuilder {
    /// Serve the browser peer's page at `/app` of the listener, replicating `crdt` unless
    /// its URL names another (`/app/?crdt=user/uuid`); `replikativ peer --web` serves the
    /// tweets CDVCS. To mount the page in your own actix-web app instead, see
    /// [`crate::peer::web_app::configure`].
    pub fn web(mut self, crdt: CrdtKey) -> Self {
        self.web = Some(crdt);
        self
    }
}
