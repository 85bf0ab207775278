//! # replikativ
//!
//! Replicated, content-addressed CRDTs over websockets, run as actors under supervisors.
//!
//! # Layout
//!
//! - [`id`]: content ids (BLAKE3-256 of the author's bytes).
//! - [`crdt`]: pure datatypes (CDVCS, OR-Map, LWW register).
//! - [`protocol`]: wire messages and their bounded MessagePack codec.
//! - [`sync`]: the pure per-connection replication state machine.
#![warn(missing_docs)]

pub mod crdt;
pub mod id;
pub mod protocol;
pub mod sync;

pub use id::Id;
