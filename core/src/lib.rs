//! # replikativ-core
//!
//! The pure core of replikativ: everything two peers must agree on, with no actors, no async
//! runtime, no store and no filesystem, so that the same code runs in a node and, compiled to
//! WebAssembly, in a browser (DESIGN §15).
//!
//! - [`id`]: content ids (BLAKE3-256 of the author's bytes).
//! - [`identity`]: Ed25519 keys and signatures (the files they live in are the node's job).
//! - [`crdt`]: pure datatypes (CDVCS, OR-Map, LWW register) and who may write an owned CDVCS.
//! - [`pack`]: many values compressed together; the decoder is pure Rust (`ruzstd`), the
//!   encoder (C zstd) comes with the `native` feature.
//! - [`params`]: how a transaction's params (a JSON value) are stored: MessagePack, decoded
//!   within a depth bound, the same for every sink and the browser.
//! - [`protocol`]: wire messages and their bounded MessagePack codec.
//! - [`sync`]: the per-connection replication state machine (time passed in).
//! - [`words`]: what a word is for search, in every sink and in the browser.
//!
//! The `replikativ` crate re-exports these modules at the same paths.

// Errors carry their context (which CRDT, which peer, which key) by value, so some are large;
// they travel only on cold failure paths, where a copy costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod crdt;
pub mod id;
pub mod identity;
pub mod pack;
pub mod params;
pub mod protocol;
pub mod sync;
pub mod words;
