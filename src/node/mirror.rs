//! The embedding API of mirroring (DESIGN §16): a node whose dialled connections take every
//! CDVCS the peer holds and may let it read, now and later.

use super::NodeBuilder;

impl NodeBuilder {
    /// Mirror every dialled peer: take every CDVCS it offers (all it holds that this node's
    /// key may read there, and those it gets later), however many. Without it a connection
    /// creates at most [`SyncLimits::max_subscriptions`](crate::sync::SyncLimits) replicas
    /// and is closed when the peer offers more. A backup of a live node is a mirror.
    pub fn mirror(mut self, on: bool) -> Self {
        self.mirror = on;
        self
    }
}
