//! Realization: tweet sources, realizers and their sinks, and queries over what was realized.
//! (Integration tests are grouped by topic into six binaries; see `tests/store/main.rs`.)

// The helpers shared by every test binary (`#![allow(dead_code)]` there: no binary uses all).
#[path = "../common/mod.rs"]
mod common;

// An independent re-statement of cli_smoke.py's rules, for `tweets_source` and
// `tweets_query`.
mod tweets_support;

// Reading tweet sources: every shipped file, skip reasons, the line limit, checkpoints.
mod tweets_source;

// Sinks: exactly-once application, rollback, panics and real crashes.
mod tweets_sink;

// Realization under failure: poison records, sink panics, a realizer killed with SIGKILL.
mod realize;

// Queries over a realized tweet database.
mod tweets_query;

// The PostgreSQL sink against a throwaway server: the same answers as SQLite, schema and
// rights, credentials and TLS, two sinks sharing a database.
mod pg_sink;

// The PostgreSQL sink's setup: schema versions, rights, credentials, TLS.
mod pg_setup;
