//! # replikativ
//!
//! Replicated, content-addressed CRDTs over websockets, run as actors under supervisors.
//!
//! # Layout
//!
//! - [`id`]: content ids (BLAKE3-256 of the author's bytes).
//! - [`crdt`]: pure datatypes (CDVCS, OR-Map, LWW register).
//! - [`store`]: content-addressed values and mutable state over redb, and the `StoreActor`.
//! - [`realize`]: sinks that realize transactions exactly once (SQLite, memory, JSON lines).
//! - [`tweets`]: the seed's application: tweet records, sources, SQLite schema and queries.
//! - [`peer`]: websocket server and client.
//! - [`cli`]: the `replikativ` command.
#![warn(missing_docs)]

pub mod cli;
pub mod crdt;
pub mod id;
pub mod peer;
pub mod realize;
pub mod store;
pub mod tweets;

pub use id::Id;
