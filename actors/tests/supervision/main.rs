//! Integration tests of the supervision runtime, one binary, one module per topic.

mod common;

mod backoff;
mod intensity;
mod panics;
mod pool;
mod restart_types;
mod shutdown;
mod significant;
mod strategies;
mod tree;
