//! The embedding API of mirroring (DESIGN §16): a node whose dialled connections take every
//! CDVCS the peer holds and may let it read, now and later; and the bound on what a plain
//! (not mirroring) connection takes.

use super::NodeBuilder;

impl NodeBuilder {
    /// Mirror every dialled peer: take every CDVCS it offers (all it holds that this node's
    /// key may read there, and those it gets later), however many. Without it a connection
    /// creates at most [`max_subscriptions`](Self::max_subscriptions) replicas and is closed
    /// when the peer offers more. A backup of a live node is a mirror.
    pub fn mirror(mut self, on: bool) -> Self {
        self.subscriptions.mirror = on;
        self
    }

    /// How many CDVCSs new to this node one (not mirroring) connection may create here
    /// (default [`SyncLimits::max_subscriptions`](crate::sync::SyncLimits), 1024): an accepted
    /// connection's subscriptions, or what a dialled peer offers — counted over every redial
    /// of that peer, so one offering more is not taken a limit's worth per reconnect. The
    /// connection that would exceed it is closed with an error naming this limit and
    /// `--mirror`, on both sides. Sharing CDVCSs this node already holds does not count.
    pub fn max_subscriptions(mut self, max: usize) -> Self {
        self.subscriptions.max = max;
        self
    }

    /// Benchmark baseline only: each connection applies received batches one at a time,
    /// waiting for each to be durable before the next (and creating each new replica before
    /// going on), as before batches of many CDVCSs shared group commits.
    #[doc(hidden)]
    pub fn sequential_applies_for_benchmark(mut self, on: bool) -> Self {
        self.subscriptions.apply_window = if on {
            1
        } else {
            crate::peer::connection::APPLY_WINDOW
        };
        self
    }
}
