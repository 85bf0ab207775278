//! # replikativ
//!
//! Replicated, content-addressed CRDTs over websockets, run as actors under supervisors.
//!
//! # Layout
//!
//! - [`id`]: content ids (BLAKE3-256 of the author's bytes).
//! - [`crdt`]: pure datatypes (CDVCS, OR-Map, LWW register).
//! - [`store`]: content-addressed values and mutable state over redb, and the `StoreActor`.
#![warn(missing_docs)]

pub mod crdt;
pub mod id;
pub mod store;

pub use id::Id;
