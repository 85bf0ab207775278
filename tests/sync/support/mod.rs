//! Test support for `sync_*` tests: an in-memory replica and a simulated network.
#![allow(dead_code)]

pub mod dag;
pub mod net;
