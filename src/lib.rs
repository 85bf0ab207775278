//! # replikativ
//!
//! Replicated, content-addressed CRDTs over websockets, run as actors under supervisors.
//!
//! # Layout
//!
//! - [`id`]: content ids (BLAKE3-256 of the author's bytes).
//! - [`crdt`]: pure datatypes (CDVCS, OR-Map, LWW register).
//! - [`protocol`]: wire messages and their bounded MessagePack codec.
//! - [`pack`]: many values compressed together (pure; the decoder builds for wasm32).
//! - [`sync`]: the pure per-connection replication state machine.
//! - [`store`]: content-addressed values and mutable state over redb; [`store::cdvcs`] is how
//!   a CDVCS lies in it; [`store::StoreHandle`] is what writers hold; the `StoreActor`.
//! - [`replica`]: `ReplicaActor`, one per CDVCS held; durable before visible.
//!   [`replicas`]: the registry that starts them and the node's event bus.
//! - [`peer`]: the peer context (identity, trust, accept pool, dialling, what peers
//!   announced), the websocket server and client (`wss://` through [`peer::tls`]), and the
//!   connection actor driving [`sync`].
//! - [`realize`]: the realizer actor and sinks that apply transactions exactly once.
//! - [`node`]: assembles the supervision tree; [`stage`]: the user's handle;
//!   [`oplog`]: OR-Maps and registers replicated as op logs over a CDVCS.
//! - [`tweets`]: the seed's application: tweet records, SQLite schema and queries;
//!   [`collector`]: sources and the buffer that commits them.
//! - [`cli`]: the `replikativ` command.
//!
//! # The path of one tweet
//!
//! From a line of the source file to a row in SQLite on another machine, in order:
//!
//! 1. `source-reader` thread, the source's only one ([`collector::source`]): reads the line
//!    (a [`tweets::TweetCursor`] knows its byte offset), parses it into tweets, and queues
//!    each with the position after it on a bounded channel (64), waiting while it is full.
//! 2. The source's feeder, an async task on the actix arbiter: gathers ready tweets into a
//!    `Feed` chunk and sends it to the collector actor, awaiting the answer before it takes
//!    more (backpressure: a slow store fills the channel and pauses the reader).
//! 3. [`collector::CollectorActor`] (actix arbiter): buffers; at `--batch` tweets or every
//!    `--flush-ms` it asks the replica for one commit ([`Stage::transact_once`], policy
//!    `MergeFirst`), carrying the file checkpoint.
//! 4. [`replica::ReplicaActor`] (reached through its slot, no lookup): leaves out tweet ids
//!    already committed, joins concurrent heads, and builds one atomic batch (params values,
//!    commit record, graph entry, heads, checkpoint, id index).
//! 5. [`store::StoreHandle`] → the `store-writer` thread ([`store::GroupCommitter`]) of the
//!    current `StoreActor` incarnation, which published it (no actor hop; a failed write
//!    stops that incarnation): one redb transaction and fsync for every batch queued
//!    meanwhile; the answer comes back on a oneshot.
//! 6. The replica applies the commit to its in-memory CDVCS and announces the durable change
//!    on its broadcast channel and the node's event bus.
//! 7. Each [`peer::connection::ConnectionActor`] hears it; its [`sync::SyncSession`] decides
//!    what the peer lacks; the commit and its values are read and sent as a binary websocket
//!    frame.
//! 8. The receiving peer's connection decodes and re-hashes the bytes (BLAKE3), hands the
//!    verified batch to its replica (`ApplyRemote`), which checks each commit's signature
//!    (and, in an owned CDVCS, its author's right to write: [`crdt::authorship`]) and makes
//!    it durable (steps 5-6).
//! 9. A [`realize::realizer::RealizerActor`] watching that replica plans what is not yet
//!    applied (`history` order) and sends the commit to its sink's own thread
//!    ([`realize::worker`]), which writes the rows and the applied-commit checkpoint in one
//!    SQLite transaction.
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
// Errors carry their context (which CRDT, which peer, which key) by value, so some are large;
// they travel only on cold failure paths, where a copy costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod collector;
pub mod identity;
pub use replikativ_core::{crdt, id, pack, protocol, sync};
pub mod node;
pub mod oplog;
pub mod ops;
pub mod peer;
pub mod realize;
pub mod replica;
pub mod replicas;
pub mod stage;
pub mod store;
pub mod tweets;

#[cfg(test)]
mod layout;

pub use id::Id;
pub use node::{Node, NodeBuilder};
pub use stage::Stage;
