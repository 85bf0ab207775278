//! The seed's collector: a source of tweets feeding a bounded buffer that is flushed into one
//! CDVCS commit (one `add-tweet` transaction per tweet) every `flush` interval or `batch`
//! tweets, with the file position checkpointed in the same atomic batch as the commit.
//!
//! ```text
//!   SourceActor ──(reader thread: file | stdin | HTTP pipe)──► CollectorActor ──► ReplicaActor
//!        ▲ restarted with backoff by its supervisor              (buffer, flush)    (durable commit)
//! ```
//! Backpressure: the reader thread waits for the collector to accept each chunk, and the
//! collector does not accept while a full buffer is being committed.

pub mod actor;
pub mod http;
pub mod source;

pub use actor::{CollectOptions, CollectReport, CollectorActor};
pub use source::{SourceActor, SourceSpec};
