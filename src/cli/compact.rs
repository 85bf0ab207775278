//! `replikativ compact`: gives a stopped store's free pages back to the filesystem (redb
//! compaction) and reports the file size before and after.

use anyhow::{Context as _, Result};
use clap::Args;

/// `replikativ compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// The store directory (stopped: no node may run on it).
    #[arg(long)]
    pub store: std::path::PathBuf,
}

/// Runs `compact`.
pub fn run(args: CompactArgs) -> Result<()> {
    let file = args.store.join(crate::store::FILE_NAME);
    let size = || -> Result<u64> {
        Ok(std::fs::metadata(&file)
            .with_context(|| format!("reading the size of {}", file.display()))?
            .len())
    };
    let store = super::open_existing_store(&args.store)?;
    let before = size()?;
    say!("compacting {} ({before} bytes)", file.display());
    store
        .compact()
        .with_context(|| format!("compacting {}", file.display()))?;
    drop(store);
    let after = size()?;
    println!(
        "compacted {}: {before} -> {after} bytes ({} freed)",
        file.display(),
        before.saturating_sub(after)
    );
    Ok(())
}
