//! The `replikativ` command line with the real binary, real processes and real signals:
//! end to end, killed at random moments, fed over HTTP, and a relay killed in a chain.
//! (Integration tests are grouped by topic into six binaries; see `tests/store/main.rs`.)

// The helpers shared by every test binary (`#![allow(dead_code)]` there: no binary uses all).
#[path = "../common/mod.rs"]
mod common;

// The command line end to end against an independent oracle.
mod cli;

// `keygen`, `id` and a node's own key.
mod keys;

// A store from before signing opens and replicates as unsigned.
mod legacy;

// `upgrade` of a format-1 store, also SIGKILLed at random moments.
mod upgrade;

// Owned CDVCSs: `collect --owned`, `grant`, a second writer admitted and revoked.
mod owned;

// Two writers of one owned CDVCS at once, over the network: each tweet realized once and
// attributed to the writer that collected it.
mod two_writers;

// `--log-format json`: stderr as JSON lines, errors included.
mod log_format;

// `status`: a running peer's /status.json as text and JSON; unreachable exits 1.
mod status;

// `compact`: free pages given back, nothing lost; a store in use refused.
mod compact;

// `collect` and `analyze` killed with SIGKILL at random moments, restarted until done.
mod cli_kill;

// `collect --source http://…` against a loopback HTTP server: reconnect backoff, SIGTERM.
mod http_source;

// `peer --mirror`: every CDVCS of a node caught up over one connection; a reconnect after
// changes in a few carries only those.
mod mirror;

// A relay peer in an A–B–C chain killed with SIGKILL at random moments.
mod relay_kill;

// TLS: `wss://` peers verified with `--ca`, a plain upgrade refused, HTTP/1.1 only.
mod tls;

// TLS: an `https://` source verified with `--ca`; README's TLS commands as written.
mod tls_sources;

// Keys refused and admitted, read-only and write-only peers, protected mode, SIGHUP.
mod trust;

// `analyze --postgres` killed at random moments, the server crashed mid-stream, two analyzers
// sharing a database; `query --postgres` answering as `query --sqlite`; `realize-skip`.
mod pg_cli;

// A mesh of ten or more peers under SIGKILLs and cut links: equal heads everywhere, and
// analyzers at the far ends realizing each tweet of two collectors exactly once.
mod mesh;

// The browser peer in headless Chromium: the page equals `query` on the same tweets, updates
// live, catches up by delta after a peer restart without a reload, works offline after a
// reload; `?ws=` is no way around another node's Origin rule.
mod browser_peer;

// The browser peer refuses a forged commit and a tampered value from a hostile server, and
// keeps an honest batch sent after them.
mod browser_forgery;
