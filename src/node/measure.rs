//! Measuring a node: its operations endpoints, what `/metrics` costs, and the benchmark
//! baseline of commits made as before signing.

use std::sync::Arc;

use super::{Node, NodeBuilder};

impl NodeBuilder {
    /// Whether the node keeps the measurements behind `/metrics` that cost something while it
    /// works: the duration of each durable group commit, bytes per connection and each
    /// peer's lag (default on; off, those series stay at zero). For measuring their cost.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Benchmark baseline only: commits as before signing existed — an author name, no
    /// signature. Replicas accept such commits in open CDVCSs only (an owned CDVCS refuses
    /// them); the product always signs.
    #[doc(hidden)]
    pub fn unsigned_commits_for_benchmark(mut self, author: impl Into<String>) -> Self {
        self.unsigned_author = Some(author.into());
        self
    }
}

impl Node {
    /// The node's operations endpoints (add an application's counters to `/metrics`).
    pub fn ops(&self) -> &Arc<crate::ops::Ops> {
        &self.ops
    }
}
