//! [`SessionConfig`] and [`SyncLimits`]: who a session speaks for and its bounds.

use crate::crdt::commit::CrdtKey;

use super::handshake::Handshake;

/// Bounds and tuning of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncLimits {
    /// Most bytes of received values buffered per CRDT until their `Commits` frame
    /// (default 32 MiB; must exceed the sender's batch size).
    pub max_pending_bytes: usize,
    /// Most ids per `Have` sample (default 64).
    pub max_sample: usize,
    /// Most `Have` rounds per negotiation (default 8).
    pub max_rounds: usize,
    /// Most ids remembered in a CRDT's frontier (default 256; forgetting only costs resends).
    pub max_frontier: usize,
    /// Most replicas a peer's subscriptions may create here on one connection (default 1024;
    /// a mirror's dialled connections: unbounded). A peer asking for more is refused
    /// (`Overloaded`) before any of them is created; sharing CRDTs held here costs nothing.
    pub max_subscriptions: usize,
}

impl Default for SyncLimits {
    fn default() -> SyncLimits {
        SyncLimits {
            max_pending_bytes: 32 << 20,
            max_sample: 64,
            max_rounds: 8,
            max_frontier: 256,
            max_subscriptions: 1024,
        }
    }
}

/// Who we are and what we want from the peer.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Our side of the authentication handshake: key, role, this connection's nonce.
    pub handshake: Handshake,
    /// CRDTs to subscribe to on this connection.
    pub subscriptions: Vec<CrdtKey>,
    /// Bounds.
    pub limits: SyncLimits,
}
