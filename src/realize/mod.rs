//! Realization (DESIGN §7): applying a CDVCS's transactions into something queryable. This
//! layer knows no application; applications (such as [`crate::tweets`]) register handlers.
//!
//! - [`params`]: the params codec of the value space ([`encode_params`], [`decode_params`]).
//! - [`plan`]: the pure realization plan ([`plan()`](plan::plan), [`ConflictPolicy`]).
//! - [`sink`]: the [`Sink`] trait (exactly-once contract) and [`SinkError`], which tells
//!   deterministic failures (park) from transient ones (retry).
//! - [`sqlite`]: [`SqliteSink`], the embedded default (WAL; applications add their schema).
//! - [`postgres`]: [`PostgresSink`], for a database server ([`PgTarget`]: URL, `PG*`
//!   variables, `.pgpass`, TLS).
//! - [`memory`]: [`MemorySink`], for tests, with failure injection.
//! - [`jsonl`]: [`JsonlSink`], JSON lines plus a checkpoint sidecar.
//! - [`realizer`]: [`RealizerActor`](realizer::RealizerActor), which follows a CDVCS into a
//!   sink exactly once, parks at poison commits; [`worker`]: the sink's own thread;
//!   [`error`]: why an incarnation ended, and [`error_chain`] to render an error's causes.

pub mod error;
pub mod jsonl;
pub mod memory;
pub use replikativ_core::params;
pub mod plan;
pub mod postgres;
pub mod realizer;
pub mod sink;
pub mod sqlite;
mod sqlite_handlers;
pub mod worker;

pub use error::{RealizeError, error_chain};
pub use jsonl::JsonlSink;
pub use memory::{AppliedOp, InjectedFailure, MemorySink, MemorySnapshot};
pub use params::{DecodeParamsError, decode_params, encode_params};
pub use plan::ConflictPolicy;
pub use postgres::{PgTarget, PostgresSink};
pub use sink::{HandlerError, Sink, SinkError, SkippedCommit, TxParams};
pub use sqlite::{SqliteHandler, SqliteSink};
