//! `replikativ upgrade --store DIR`: rewrite a stopped store of an older format in this
//! build's (packs found through their commits, sealed state records: format 4), verify it, swap it in atomically and keep the old file as a
//! backup ([`crate::store::upgrade`]). Safe to interrupt: running it again finishes or
//! restarts the work, and the old store is only read until the one atomic rename.

use anyhow::{Context as _, Result};

use super::args::UpgradeArgs;
use crate::store::upgrade::{Upgraded, backup_name, upgrade};

/// Runs `upgrade`.
pub fn run(args: UpgradeArgs) -> Result<()> {
    let dir = &args.store;
    let outcome = upgrade(dir, &mut |step| eprintln!("upgrade: {step}"))
        .with_context(|| format!("upgrading the store {}", dir.display()))?;
    match outcome {
        Upgraded::AlreadyCurrent => {
            println!(
                "{} is already at store format {}; nothing to do",
                dir.display(),
                crate::store::FORMAT_VERSION
            );
            for backup in (1..crate::store::FORMAT_VERSION).map(|f| dir.join(backup_name(f))) {
                if backup.exists() {
                    println!(
                        "the old store from an earlier upgrade is {}",
                        backup.display()
                    );
                }
            }
        }
        Upgraded::Done { backup, counts } => {
            println!(
                "upgraded {} to store format {}: {} values ({} packs), {} state records, {} blobs, verified",
                dir.display(),
                crate::store::FORMAT_VERSION,
                counts.values,
                counts.packs,
                counts.state,
                counts.blobs
            );
            println!(
                "the old store is kept as {} (delete it once you no longer need it)",
                backup.display()
            );
        }
    }
    Ok(())
}
