//! Hostile peers against a real websocket server. A binary of its own: its tests measure the
//! process's resident memory (serialized among themselves with `common::nodes::serial`), so
//! no other test may run in the same process meanwhile. (Integration tests are grouped by
//! topic into six binaries; see `tests/store/main.rs`.)

// The helpers shared by every test binary (`#![allow(dead_code)]` there: no binary uses all).
#[path = "../common/mod.rs"]
mod common;

// Malformed, oversized and text frames, wrong versions, forged ids, unreachable parents,
// subscription floods, a peer that never reads; memory stays bounded.
mod hostile;

// The authentication handshake and the rules under attack: replays, forged proofs, stalls,
// hostile bytes, unknown keys, browser upgrades from foreign origins.
mod handshake;

// Forged, misattributed and stripped commits from a peer with write rights.
mod forgery;

// A relay with write rights in an A–B–C chain of real processes forges, misattributes and
// strips commits between genuine ones: each batch refused, C realizes only A's tweets.
mod relay_forgery;
