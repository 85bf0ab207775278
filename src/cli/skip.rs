//! `replikativ realize-skip`: an operator skips a parked commit; the skip is recorded in the
//! sink (table `skipped`) and counts as applied, so the realizer moves past it.

use anyhow::{Context as _, Result};

use super::args::RealizeSkipArgs;
use crate::realize::{Sink, SqliteSink};

/// Runs `realize-skip`.
pub fn run(args: RealizeSkipArgs) -> Result<()> {
    let mut sink = SqliteSink::open_existing(&args.sqlite)
        .with_context(|| format!("opening the sink {}", args.sqlite.display()))?;
    sink.record_skip(args.commit, &args.reason)
        .with_context(|| format!("recording the skip of {}", args.commit))?;
    println!(
        "skipped commit {} in {} ({})",
        args.commit,
        args.sqlite.display(),
        args.reason
    );
    Ok(())
}
