//! `replikativ log`: heads and size of a CDVCS in a store, derived from its graph and commit
//! records (the root, which only names the CDVCS, is not counted): transactions by author
//! (`unsigned` for commits made before signing), and grants and revokes of write access
//! counted apart (they are system operations, not transactions). Commits a revoked key wrote
//! on a branch forked before its revoke are valid, and flagged "concurrent with revoke".

use std::collections::BTreeMap;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;

use super::args::LogArgs;
use crate::crdt::authorship::{Authorship, REVOKE_WRITE, authorship, is_access_op};
use crate::crdt::revoke_forks::History;
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
    /// Valid commits by a key written on a branch forked before a revoke of that key.
    pub concurrent_with_revoke: Vec<ConcurrentJson>,
}

/// One commit flagged "concurrent with revoke" in `log --json`.
#[derive(Debug, Serialize)]
pub struct ConcurrentJson {
    /// The commit, hex.
    pub commit: String,
    /// Its author, the revoked key.
    pub author: String,
    /// The commit holding the revoke, hex.
    pub revoke: String,
}

/// What `log` counts in a CDVCS, and its history for flagging writes concurrent with a
/// revoke.
#[derive(Debug, Default)]
pub struct Summary {
    /// Commits (without the root).
    pub commits: u64,
    /// Transactions (grants and revokes not included).
    pub transactions: u64,
    /// Transactions by author key, or `unsigned`.
    pub authors: BTreeMap<String, u64>,
    /// Grants and revokes.
    pub grants: u64,
    /// The history with authors and revokes.
    pub history: History,
}

/// Reads every commit record of `cdvcs` (the CDVCS `key`) from `store` once.
pub fn summarize(store: &Store, key: &CrdtKey, cdvcs: &Cdvcs) -> Result<Summary> {
    let mut sum = Summary::default();
    for (id, parents) in cdvcs.entries() {
        if parents.is_empty() {
            sum.history.add(id, parents, None, []);
            continue;
        }
        let commit = crate::store::cdvcs::load_commit_record(store, &id)?
            .with_context(|| format!("commit {id} is in the graph but not in the store"))?;
        sum.commits += 1;
        let txs = &commit.commit.transactions;
        let access = txs.iter().filter(|t| is_access_op(&t.op)).count() as u64;
        let ops = txs.len() as u64 - access;
        sum.grants += access;
        sum.transactions += ops;
        // Without a valid signature here (made before signing, or replicated from a peer
        // that did not send its signature) a commit is attributed to no key.
        let signer = match authorship(key, &id, &commit.commit, commit.signature.as_ref()) {
            Ok(Authorship::Signed(k)) => Some(k),
            _ => None,
        };
        if ops > 0 {
            let who = signer.map_or_else(|| "unsigned".to_owned(), |k| k.to_string());
            *sum.authors.entry(who).or_default() += ops;
        }
        let revoked = txs
            .iter()
            .filter(|t| t.op == REVOKE_WRITE)
            .map(|t| t.params)
            .collect::<Vec<_>>();
        sum.history.add(id, parents, signer, revoked);
    }
    Ok(sum)
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
    let Summary {
        commits,
        transactions,
        authors,
        grants,
        history,
    } = summarize(&store, &key, &cdvcs)?;
    let flagged = history.concurrent_with_revokes();
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
                concurrent_with_revoke: flagged
                    .iter()
                    .map(|f| ConcurrentJson {
                        commit: f.commit.to_hex(),
                        author: f.author.to_string(),
                        revoke: f.revoke.to_hex(),
                    })
                    .collect(),
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
        for f in &flagged {
            println!("  flagged: {f}");
        }
        if heads.len() > 1 {
            println!("  (several heads: concurrent commits waiting for a merge)");
        }
    }
    Ok(())
}
