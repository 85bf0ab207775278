//! Per-connection replication (DESIGN §6) as a pure state machine, in the manner of
//! tikv/raft-rs: the driver (a connection actor, or a simulated network in tests) feeds
//! inputs to a [`SyncSession`] and carries out the [`Effect`]s it returns, and its outgoing
//! catch-ups through a [`Flow`] (window, pings, batches, stall detection). No actix, no I/O,
//! no clock: the time is passed in.
//!
//! # Wire semantics
//!
//! 1. **Handshake** ([`handshake`]). `start()` sends `Hello{version, key, nonce}`; the peer's
//!    `Hello` is answered with `Proof{signature}`; the peer's valid `Proof` is
//!    [`Effect::Authenticated`], which the driver answers with
//!    [`authorize`](SyncSession::authorize) (the key's [`Rights`] here; our subscriptions go
//!    out) or [`refuse`](SyncSession::refuse) (`Error{unauthorized}`, close). Anything else
//!    before that closes with `Unexpected`; a wrong version, a bad proof or our own key close
//!    the session with a reason that says so.
//! 2. **Rights.** A subscription (a `Subscribe`, or the first `Heads` of a CRDT, see 3) from
//!    a peer without read is refused with
//!    `Error{forbidden}` naming the CDVCS and the right (shared all the same when the peer
//!    may write, so that it can send its commits); nothing is sent to a peer without read;
//!    `Values`/`Commits` from a peer without write are dropped and refused the same way,
//!    nothing stored. A `Forbidden` refuses one request: the connection stays.
//! 3. **Sharing.** A side subscribes by sending its `Heads` of each CRDT (protocol 3; no
//!    separate `Subscribe`). The first `Heads` of a CRDT not yet shared on the connection is
//!    the peer's subscription, handled exactly like a `Subscribe`: the rights check of 2,
//!    missing replicas created (`EnsureReplica`), the subscription limit; the receiver
//!    answers with its own `Heads` unless its own subscription already carried them (both
//!    sides subscribing cross: one `Heads` each). A `Subscribe` is still answered the same
//!    way (`Heads` for each newly shared CRDT), and `Subscribed` shares what we asked for.
//!    Replication is then bidirectional for that CRDT. Other messages about CRDTs not shared
//!    on the connection are ignored.
//! 4. **Heads.** If we hold all the peer's heads we send exactly
//!    `commits_between(frontier, our heads)` (nothing if empty) and save the heads as the
//!    per-peer hint. Otherwise we negotiate (module `negotiation`): `Have{sample}` →
//!    `Known{ids}` rounds until a common frontier is found, then send the delta.
//! 5. **Transfer.** `SendCommits` goes to the connection's [`Flow`], which loads it in
//!    batches bounded by bytes, frames each with [`plan_frames`] (`Values` and `Packs`, then
//!    `Commits`, parents first, in frames bounded by bytes and count; protocol 4 sends a
//!    commit's params as the packs it is stored with, compressed, each with its value ids), ends each with `Ping(n)`, sends
//!    `Heads` after the last batch only, and keeps at most a window of batches unacknowledged
//!    by the peer's `Pong(n)`; a peer that acknowledges nothing for too long is closed.
//! 6. **Receipt.** `Values` and `Packs` are buffered (bounded by `max_pending_bytes`, else
//!    close `Overloaded`) until the next `Commits` frame, which is verified with them as one
//!    batch: every value and commit hashed once on receipt (by the codec, see
//!    [`Received`](crate::protocol::Received); a pack is refused before decompressing when it
//!    declares more than [`crate::pack::MAX_PACK_BYTES`], decompressed at most that far, and
//!    stored as received), every commit decoded, every parent in the
//!    batch or held. Any failure refuses the whole batch (`Reject` with peer and id, then close); a
//!    good batch becomes `Apply`. Heads arriving while batches are being applied wait for
//!    `on_applied`.
//! 7. **Relay.** After a durable apply, the driver calls `on_local_change` on every other
//!    session; a session sends only what its peer lacks by its frontier, so nothing is echoed
//!    to its source and a quiet CRDT costs nothing.
//!
//! The session assumes a reliable, ordered transport (a websocket): a lost message may stall
//! a CRDT until reconnect but never corrupts state, and reordering or loss that leaves a
//! commit without its parents closes the connection; a reconnect resynchronizes from heads.
//! 8. **Digests** (protocol 5, module `resume`): a session authorized with an [`Offer`]
//!    sends one digest of everything it offers instead of one `Heads` per CRDT; equal
//!    digests share everything at the offered heads, differing ones are narrowed down a tree
//!    to the CRDTs that differ, which then exchange `Heads` as in 3.
//!
//! A reconnect with nothing new costs `Hello`, `Proof` and one `Digests` per side: a few
//! hundred bytes, whatever the history length and however many CRDTs are shared.

mod admission;
pub mod ancestry;
mod batch;
mod config;
pub mod digest;
mod effect;
pub mod flow;
mod graph;
pub mod handshake;
mod lag;
mod negotiation;
mod receive;
mod resume;
mod rights;
mod session;
mod verify;

pub use batch::{BatchError, BatchLimits, OutgoingCommit, plan_frames};
pub use config::{SessionConfig, SyncLimits};
pub use digest::Offer;
pub use effect::{CloseReason, Effect, Request, SyncError, VerifiedBatch};
pub use flow::{Flow, FlowLimits, FlowOutput, Stalled};
pub use graph::{GraphView, Graphs};
pub use handshake::{Handshake, HandshakeError, Role};
pub use rights::Rights;
pub use session::SyncSession;
pub use verify::verify_stored;
