//! The store: its API, its files on disk, and what survives crashes, power cuts and I/O
//! errors. Integration tests are grouped by topic into six test binaries (`store`, `sync`,
//! `nodes`, `realize`, `cli`, `hostile`), each `tests/<name>/main.rs` with its modules beside
//! it, instead of one binary per file; a test's path names its module, e.g.
//! `cargo test --test store -- power_loss`.

// The helpers shared by every test binary (`#![allow(dead_code)]` there: no binary uses all).
#[path = "../common/mod.rs"]
mod common;

// A simulated disk (volatile unsynced writes, torn writes, ENOSPC/EIO, failing, held and
// faked writes and syncs), for `power_loss`, `storage_faults` and `store` (the store has no
// test hooks of its own); `nodes` includes it too.
mod faulty_backend;

// Round trips, dedupe, atomic batches, prefix scans, verification, the `StoreActor`'s group
// commit.
mod store;

// Packs (format 2): a batch's values compressed together, read, verified, damaged; a
// format-1 store refused untouched.
mod packs;

// Store files that are damaged, foreign, newer, or held by another process.
mod store_files;

// Crash consistency: a child process writes batches and is killed with SIGKILL.
mod store_crash;

// Truncated and bit-flipped files, failing writes and syncs, a full disk.
mod storage_faults;

// Power cuts on the simulated disk: every acknowledged batch survives.
mod power_loss;
