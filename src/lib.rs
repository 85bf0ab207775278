//! # replikativ
//!
//! Replicated, content-addressed CRDTs over websockets, run as actors under supervisors.
//!
//! # Layout
//!
//! - [`id`]: content ids (BLAKE3-256 of the author's bytes).
//! - [`crdt`]: pure datatypes (CDVCS, OR-Map, LWW register).
#![warn(missing_docs)]

pub mod crdt;
pub mod id;
pub mod realize;
pub mod tweets;

pub use id::Id;
pub mod cli;
pub mod peer;
