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
//! - [`store`]: content-addressed values and mutable state over redb, and the `StoreActor`.
//! - [`replica`]: `ReplicaActor`, one per CDVCS held; durable before visible.
//! - [`peer`]: websocket server and client, and the connection actor driving [`sync`].
//! - [`realize`]: the realizer actor and sinks that apply transactions exactly once.
//! - [`node`]: the supervision tree and the embedding API; [`stage`]: the user's handle;
//!   [`oplog`]: OR-Maps and registers replicated as op logs over a CDVCS.
//! - [`tweets`]: the seed's application: tweet records, SQLite schema and queries;
//!   [`collector`]: sources and the buffer that commits them.
//! - [`cli`]: the `replikativ` command.
//!
//! # Example
//!
//! A node with an in-memory store: commit a transaction and read the head back. Add
//! `.listen("127.0.0.1:0")` to serve peers, `.connect(url)` to replicate from one, and
//! `.realize(spec)` to stream the CDVCS into a sink.
//!
//! ```
//! use replikativ::{Node, crdt::CrdtKey, node::StoreLocation};
//!
//! actix_rt::System::new().block_on(async {
//!     let key = CrdtKey::new("me@example.com", uuid::Uuid::nil());
//!     let node = Node::builder()
//!         .store(StoreLocation::Memory)
//!         .cdvcs(key.clone())
//!         .start()
//!         .await
//!         .expect("node starts");
//!     let stage = node.stage();
//!     let note = rmp_serde::to_vec("hello").expect("encode");
//!     let commit = stage
//!         .transact(&key, vec![("add-note".into(), note)])
//!         .await
//!         .expect("durable commit");
//!     assert_eq!(stage.heads(&key).await.expect("heads"), vec![commit]);
//!     node.shutdown().await;
//! });
//! ```
#![warn(missing_docs)]
// Errors carry their context (which CRDT, which peer, which key) by value, so some are large;
// they travel only on cold failure paths, where a copy costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod collector;
pub mod crdt;
pub mod id;
pub mod node;
pub mod oplog;
pub mod peer;
mod pool_slot;
pub mod protocol;
pub mod realize;
pub mod replica;
pub mod replicas;
pub mod stage;
pub mod store;
pub mod sync;
pub mod tweets;

pub use id::Id;
pub use node::{Node, NodeBuilder};
pub use stage::Stage;
