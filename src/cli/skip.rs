//! `replikativ realize-skip`: an operator skips a parked commit; the skip is recorded in the
//! sink (table `skipped`) and counts as applied, so the realizer moves past it.

use anyhow::{Context as _, Result};

use super::args::RealizeSkipArgs;
use super::sink_target::SinkTarget;

/// Runs `realize-skip`.
pub fn run(args: RealizeSkipArgs) -> Result<()> {
    let target = SinkTarget::from_flags(
        "realize-skip",
        args.sqlite.as_deref(),
        args.postgres.as_deref(),
    )?;
    let mut sink = target
        .open_existing()
        .with_context(|| format!("opening the sink {target}"))?;
    sink.record_skip(args.commit, &args.reason)
        .with_context(|| format!("recording the skip of {}", args.commit))?;
    println!(
        "skipped commit {} in {target} ({})",
        args.commit, args.reason
    );
    Ok(())
}
