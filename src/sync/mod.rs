//! Per-connection replication (DESIGN §6) as a pure state machine, in the manner of
//! tikv/raft-rs: the driver (a connection actor, or a simulated network in tests) feeds
//! inputs to a [`SyncSession`] and carries out the [`Effect`]s it returns, and its outgoing
//! catch-ups through a [`Flow`] (window, pings, batches, stall detection). No actix, no I/O,
//! no clock: the time is passed in.
//!
//! # Wire semantics
//!
//! 1. **Handshake.** `start()` sends `Hello{version, peer_id}` then `Subscribe{crdts}`.
//!    Anything before the peer's `Hello` closes with `Unexpected`; a wrong version closes with
//!    `WrongVersion`; our own peer id closes with `SelfConnection`.
//! 2. **Sharing.** On `Subscribe` a side creates missing replicas (`EnsureReplica`) and sends
//!    `Heads` for each newly shared CRDT; that `Heads` is the acknowledgement: the subscriber
//!    answers the first `Heads` of a CRDT it asked for with its own `Heads`. (`Subscribed` is
//!    still understood, from older peers, and treated the same way.) Replication is then
//!    bidirectional for that CRDT. Messages about CRDTs not shared on the connection are
//!    ignored.
//! 3. **Heads.** If we hold all the peer's heads we send exactly
//!    `commits_between(frontier, our heads)` (nothing if empty) and save the heads as the
//!    per-peer hint. Otherwise we negotiate (module `negotiation`): `Have{sample}` →
//!    `Known{ids}` rounds until a common frontier is found, then send the delta.
//! 4. **Transfer.** `SendCommits` goes to the connection's [`Flow`], which loads it in
//!    batches bounded by bytes, frames each with [`plan_frames`] (`Values`, then `Commits`,
//!    parents first, in frames bounded by bytes and count), ends each with `Ping(n)`, sends
//!    `Heads` after the last batch only, and keeps at most a window of batches unacknowledged
//!    by the peer's `Pong(n)`; a peer that acknowledges nothing for too long is closed.
//! 5. **Receipt.** `Values` are buffered (bounded by `max_pending_bytes`, else close
//!    `Overloaded`) until the next `Commits` frame, which is verified with them as one batch:
//!    every value and commit hashed once on receipt (by the codec, see
//!    [`Received`](crate::protocol::Received)), every commit decoded, every parent in the
//!    batch or held. Any failure refuses the whole batch (`Reject` with peer and id, then close); a
//!    good batch becomes `Apply`. Heads arriving while batches are being applied wait for
//!    `on_applied`.
//! 6. **Relay.** After a durable apply, the driver calls `on_local_change` on every other
//!    session; a session sends only what its peer lacks by its frontier, so nothing is echoed
//!    to its source and a quiet CRDT costs nothing.
//!
//! The session assumes a reliable, ordered transport (a websocket): a lost message may stall
//! a CRDT until reconnect but never corrupts state, and reordering or loss that leaves a
//! commit without its parents closes the connection; a reconnect resynchronizes from heads.
//! A reconnect with nothing new costs `Hello`, `Subscribe` and one `Heads` per side: a few
//! hundred bytes, whatever the history length.

pub mod ancestry;
mod batch;
mod config;
mod effect;
pub mod flow;
mod graph;
mod negotiation;
mod receive;
mod session;
mod verify;

pub use batch::{BatchError, BatchLimits, OutgoingCommit, plan_frames};
pub use config::{SessionConfig, SyncLimits};
pub use effect::{CloseReason, Effect, SyncError, VerifiedBatch};
pub use flow::{Flow, FlowLimits, FlowOutput, Stalled};
pub use graph::{GraphView, Graphs};
pub use session::SyncSession;
