//! The `replikativ` command line (DESIGN §8).
pub mod args;

pub use args::Cli;

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
    anyhow::bail!("{:?} is not wired yet", cli.command)
}
