//! `replikativ log`: heads and size of a CDVCS in a store, derived from its graph and commit
//! records (the root, which only names the CDVCS, is not counted).

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::args::LogArgs;
use crate::crdt::{Cdvcs, Commit, CrdtKey};
use crate::store::Store;

/// `log --json`.
#[derive(Debug, Serialize)]
pub struct LogJson {
    /// The heads, hex.
    pub heads: Vec<String>,
    /// Commits (without the root).
    pub commits: u64,
    /// Transactions in those commits.
    pub transactions: u64,
}

/// Loads the CDVCS `key` from `store` (None when the store does not hold it).
pub fn load_cdvcs(store: &Store, key: &CrdtKey) -> Result<Option<Cdvcs>> {
    Ok(crate::store::cdvcs::load(store, key)?)
}

/// Runs `log`.
pub fn run(args: LogArgs) -> Result<()> {
    let key = CrdtKey::new(args.crdt.user.clone(), args.crdt.cdvcs);
    let store = super::open_existing_store(&args.store)?;
    let Some(cdvcs) = load_cdvcs(&store, &key)? else {
        bail!("the store {} holds no CDVCS {key}", args.store.display());
    };
    let mut commits = 0u64;
    let mut transactions = 0u64;
    for (id, parents) in cdvcs.entries() {
        if parents.is_empty() {
            continue;
        }
        let bytes = store
            .get_value(&id)?
            .with_context(|| format!("commit {id} is in the graph but not in the store"))?;
        let commit =
            Commit::decode(&bytes).with_context(|| format!("commit {id} cannot be decoded"))?;
        commits += 1;
        transactions += commit.commit.transactions.len() as u64;
    }
    let heads: Vec<String> = cdvcs.heads().iter().map(|h| h.to_hex()).collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&LogJson {
                heads,
                commits,
                transactions
            })?
        );
    } else {
        println!("CDVCS {key}");
        println!("  {commits} commits, {transactions} transactions");
        for h in &heads {
            println!("  head {h}");
        }
        if heads.len() > 1 {
            println!("  (several heads: concurrent commits waiting for a merge)");
        }
    }
    Ok(())
}
