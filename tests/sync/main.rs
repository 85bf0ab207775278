//! The pure core: CRDT laws, the sync session and its frames, graph walks, the wire codec,
//! and replication over a simulated network. No sockets, no processes. (Integration tests are
//! grouped by topic into six binaries; see `tests/store/main.rs`.)

// The helpers shared by every test binary (`#![allow(dead_code)]` there: no binary uses all).
#[path = "../common/mod.rs"]
mod common;

// An in-memory replica (`dag`) and a simulated network (`net`), shared with `benches/sync.rs`.
mod support;

// Property tests for every CRDT law, with duplicates, reordering and partitions.
mod crdt_props;

// One `SyncSession` driven by hand: handshake, verification, bounds, deferral, no echo.
mod sync_session;

// `plan_frames`: bounded frames, values before the commits that need them, heads last.
mod sync_batch;

// The graph walks behind `GraphView` against brute-force set arithmetic.
mod sync_ancestry;

// Sharing by digests (protocol 5): reconnect cost proportional to what changed.
mod sync_digest;

// 3–5 replicas over links that drop, duplicate, reorder, cut and heal; flow control.
mod sync_sim;

// The wire codec under hostile input: typed refusals, no panic, no allocation by claimed
// length.
mod protocol_codec;
