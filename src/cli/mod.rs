//! The `replikativ` command line (DESIGN §8): thin glue over the library.
//!
//! Each subcommand lives in its own file; results go to stdout, logs and progress to stderr.
pub mod args;
pub mod query;

pub use args::Cli;

use args::Command;

/// A usage error found after parsing (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Sends `tracing` output to stderr (stdout carries only results); `RUST_LOG` filters it.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Query(args) => query::run(args),
        other => anyhow::bail!("{other:?}"),
    }
}
