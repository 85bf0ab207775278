//! The `replikativ` command line (DESIGN §8): thin glue over the library.
//!
//! Each subcommand lives in its own file; results go to stdout, logs and progress to stderr
//! (as text, or with `--log-format json` as one JSON object per line: see [`say!`]).

/// Progress and notices for the operator on stderr: a line of text, or with `--log-format
/// json` a `tracing` event (one JSON object per line).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::say(format_args!($($arg)*))
    };
}

pub mod analyze;
pub mod args;
pub mod collect;
pub mod compact;
pub mod demo;
pub mod grant;
pub mod grant_remote;
pub mod keys;
pub mod log;
pub mod merge;
pub mod node_args;
pub mod peer;
pub mod progress;
pub mod query;
pub mod signals;
pub mod sink_target;
pub mod skip;
pub mod status;
pub mod upgrade;
pub mod verify;

pub use args::Cli;

use args::Command;

/// Opens the store in `dir` for a command that reads or repairs an existing store (`log`,
/// `merge`, `verify`): a directory without a store is an error, never a new empty store.
pub fn open_existing_store(dir: &std::path::Path) -> anyhow::Result<crate::store::Store> {
    use anyhow::Context as _;
    let file = dir.join(crate::store::FILE_NAME);
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() && m.len() > 0 => {}
        Ok(m) if m.is_file() => {
            anyhow::bail!("the store file {} is empty (truncated?)", file.display())
        }
        _ => anyhow::bail!(
            "there is no store at {} (no {} in it); give the --store directory a node wrote",
            dir.display(),
            crate::store::FILE_NAME
        ),
    }
    crate::store::Store::open(dir).with_context(|| format!("opening the store {}", dir.display()))
}

/// Refuses a `--connect` value that is not a websocket URL (a usage error, exit 2).
pub fn check_peer_url(url: &str) -> Result<(), UsageError> {
    if url.starts_with("ws://") || url.starts_with("wss://") {
        return Ok(());
    }
    Err(UsageError(format!(
        "--connect {url} is not a ws:// URL (e.g. ws://127.0.0.1:8080/, or wss://host:port/ for TLS)"
    )))
}

/// Whether `e` is a usage error (exit status 2): a [`UsageError`], or trust settings a node
/// cannot start with (an invalid allow file, no rules beyond loopback).
pub fn is_usage_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<UsageError>()
            || c.downcast_ref::<crate::node::NodeError>()
                .is_some_and(|n| matches!(n, crate::node::NodeError::Trust(_)))
    })
}

/// A usage error found after parsing (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether stderr carries JSON lines (`--log-format json`).
pub fn json_logs() -> bool {
    JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Sends `tracing` output to stderr (stdout carries only results); `RUST_LOG` filters it.
pub fn init_logging(format: args::LogFormat) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("warn,replikativ=info,replikativ_actors=warn")
        })
    };
    if format == args::LogFormat::Json {
        JSON_LOGS.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .try_init();
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// What [`say!`] prints.
pub fn say(message: std::fmt::Arguments<'_>) {
    if json_logs() {
        tracing::info!(target: "replikativ::cli", "{message}");
    } else {
        eprintln!("{message}");
    }
}

/// An error as the last line on stderr: text with its causes, or one JSON object.
pub fn report_error(e: &anyhow::Error) {
    if json_logs() {
        let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
        let line = serde_json::json!({"level": "ERROR", "error": e.to_string(), "causes": causes});
        eprintln!("{line}");
        return;
    }
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Collect(args) => collect::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Query(args) => query::run(args),
        Command::Log(args) => log::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Peer(args) => peer::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Upgrade(args) => upgrade::run(args),
        Command::RealizeSkip(args) => skip::run(args),
        Command::Keygen(args) => keys::keygen(args),
        Command::Id(args) => keys::id(args),
        Command::Grant(args) => grant::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Status(args) => status::run(args),
    }
}
