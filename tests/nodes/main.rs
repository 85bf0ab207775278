//! Nodes in one process and across processes: the stage API, supervision under load, op logs,
//! replication between peers over real websockets and through a faulty network, and several
//! writers on one CDVCS. (Integration tests are grouped by topic into six binaries; see
//! `tests/store.rs`.)

// The helpers shared by every test binary (`#![allow(dead_code)]` there: no binary uses all).
#[path = "../common/mod.rs"]
mod common;

// The simulated disk of the store tests (`tests/store/faulty_backend.rs`), for a node whose
// store writes fail on demand.
#[path = "../store/faulty_backend.rs"]
mod faulty_backend;

// The stage API end to end: one node, two replicating nodes, two heads, a `Wait` realizer;
// the embedding example.
mod node;

// Operations endpoints: /healthz, /status.json, /metrics; the admin token beyond loopback.
mod ops;

// The live status page in headless Chromium: restarts and a parked realizer, no reload.
mod status_page;

// Signed history: a node's commits carry its signature.
mod signed;

// Children crash while thousands of transacts are in flight; shutdown never deadlocks.
mod supervision_load;

// OR-Maps and registers replicated as op logs over a CDVCS.
mod oplog;

// Replication over real websockets: both directions, chains, partitions, a killed server.
mod replication;

// Connections cut, stalled, delayed and half-closed by the TCP fault proxy.
mod network_faults;

// Several writers on one CDVCS: deterministic merges, one head, every tweet once.
mod several_writers;

// A mirror catching up many CDVCSs over one connection, applies sharing group commits.
mod mirror;
