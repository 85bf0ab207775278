//! `replikativ log`: heads and size of a CDVCS in a store, derived from its graph and commit
//! records (the root, which only names the CDVCS, is not counted): transactions by author
//! (`unsigned` for commits made before signing), and grants and revokes of write access
//! counted apart (they are system operations, not transactions).

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::args::LogArgs;
use crate::crdt::authorship::{Authorship, authorship, is_access_op};
use crate::crdt::{Cdvcs, CrdtKey};
use crate::store::Store;

/// `log --json`.
#[derive(Debug, Serialize)]
pub struct LogJson {
    /// The heads, hex.
    pub heads: Vec<String>,
    /// Commits (without the root).
    pub commits: u64,
    /// Transactions in those commits (grants and revokes not included).
    pub transactions: u64,
    /// Transactions by author key, or `unsigned`; the values sum to `transactions`.
    pub authors: BTreeMap<String, u64>,
    /// Grants and revokes of write access.
    pub grants: u64,
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
    let (mut commits, mut transactions, mut grants) = (0u64, 0u64, 0u64);
    let mut authors: BTreeMap<String, u64> = BTreeMap::new();
    for (id, parents) in cdvcs.entries() {
        if parents.is_empty() {
            continue;
        }
        let commit = crate::store::cdvcs::load_commit_record(&store, &id)?
            .with_context(|| format!("commit {id} is in the graph but not in the store"))?;
        commits += 1;
        let access = commit
            .commit
            .transactions
            .iter()
            .filter(|t| is_access_op(&t.op))
            .count() as u64;
        let txs = commit.commit.transactions.len() as u64 - access;
        grants += access;
        transactions += txs;
        if txs > 0 {
            // Without a valid signature here (made before signing, or replicated from a
            // peer that did not send its signature) a commit is attributed to no key.
            let who = match authorship(&key, &id, &commit.commit, commit.signature.as_ref()) {
                Ok(Authorship::Signed(k)) => k.to_string(),
                _ => "unsigned".to_owned(),
            };
            *authors.entry(who).or_default() += txs;
        }
    }
    let heads: Vec<String> = cdvcs.heads().iter().map(|h| h.to_hex()).collect();
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&LogJson {
                heads,
                commits,
                transactions,
                authors,
                grants,
            })?
        );
    } else {
        println!("CDVCS {key}");
        println!("  {commits} commits, {transactions} transactions, {grants} grants");
        for (author, n) in &authors {
            println!("  {n} transactions by {author}");
        }
        for h in &heads {
            println!("  head {h}");
        }
        if heads.len() > 1 {
            println!("  (several heads: concurrent commits waiting for a merge)");
        }
    }
    Ok(())
}
