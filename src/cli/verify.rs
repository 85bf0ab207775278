//! `replikativ verify`: re-hash every value, then check every CDVCS graph against its commit
//! records (like `git fsck`), and every commit's signature and grant chain (DESIGN §11).
//! Names every damaged record; exit 1 when anything is wrong.

use anyhow::{Context as _, Result, bail};

use super::args::VerifyArgs;
use super::log::load_cdvcs;
use crate::crdt::Commit;

/// Runs `verify`.
pub fn run(args: VerifyArgs) -> Result<()> {
    let store = super::open_existing_store(&args.store)?;
    let report = store.verify().context("re-hashing the store")?;
    let mut problems: Vec<String> = report
        .damage
        .iter()
        .map(|d| format!("{} {}: {}", d.table, d.key, d.problem))
        .collect();
    let mut commits = 0u64;
    let crdts = store.list_crdts()?;
    for k in &crdts {
        let key = k.clone();
        let cdvcs = match load_cdvcs(&store, &key) {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                problems.push(format!("CDVCS {key}: {e:#}"));
                continue;
            }
        };
        for (id, parents) in cdvcs.entries() {
            commits += 1;
            let bytes = match store.get_value(&id) {
                Ok(Some(b)) => b,
                Ok(None) => {
                    problems.push(format!("CDVCS {key}: commit {id} is missing"));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("CDVCS {key}: commit {id}: {e}"));
                    continue;
                }
            };
            let commit = match Commit::decode(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("CDVCS {key}: commit {id} does not decode: {e}"));
                    continue;
                }
            };
            if commit.commit.parents != parents {
                problems.push(format!(
                    "CDVCS {key}: commit {id} lists other parents than its graph entry"
                ));
            }
            if parents.is_empty() {
                continue;
            }
            // Through the packs written with the commit, each value re-hashed.
            match crate::store::cdvcs::load_commit(&store, &id) {
                Ok(Some(stored)) => {
                    for (value, bytes) in &stored.params {
                        if bytes.is_none() {
                            problems.push(format!(
                                "CDVCS {key}: commit {id} references value {value} which is missing"
                            ));
                        }
                    }
                }
                Ok(None) => problems.push(format!("CDVCS {key}: commit {id} is missing")),
                Err(e) => problems.push(format!(
                    "CDVCS {key}: {}",
                    replikativ_actors::error_chain(&e)
                )),
            }
        }
    }
    // Every signature and every grant chain, as a replica judges them before storing; valid
    // writes on a branch forked before a revoke of their author are flagged, not damage.
    let mut flagged = Vec::new();
    for key in &crdts {
        match crate::store::writers::judge_stored(&store, key) {
            Ok(Some((cdvcs, mut writers))) => {
                if crate::crdt::authorship::owner_of(key).is_some() {
                    problems.extend(writer_records_differ(&store, key, &cdvcs, &mut writers));
                }
                match super::log::summarize(&store, key, &cdvcs) {
                    Ok(sum) => flagged.extend(
                        sum.history
                            .concurrent_with_revokes()
                            .into_iter()
                            .map(|f| format!("CDVCS {key}: {f}")),
                    ),
                    Err(e) => problems.push(format!("CDVCS {key}: {e:#}")),
                }
            }
            Ok(None) => {}
            Err(e) => problems.push(format!(
                "CDVCS {key}: {}",
                replikativ_actors::error_chain(&e)
            )),
        }
    }
    println!(
        "checked {} values, {} state records, {} CDVCS with {commits} commits",
        report.values_checked,
        report.state_records,
        crdts.len()
    );
    for f in &flagged {
        println!("flagged: {f}");
    }
    if problems.is_empty() {
        println!("ok: no damage found");
        Ok(())
    } else {
        for p in &problems {
            println!("damaged: {p}");
        }
        bail!(
            "{} problem(s) found in {}",
            problems.len(),
            args.store.display()
        )
    }
}

/// The stored writer records of the owned CDVCS `key` that differ from what its history,
/// judged again (`writers`), gives: a record that would let a key write where the owner did
/// not allow it, or refuse one it did. A commit without a record is not damage (records of a
/// CDVCS stored before they were kept are written on its first use).
fn writer_records_differ(
    store: &crate::store::Store,
    key: &crate::crdt::CrdtKey,
    cdvcs: &crate::crdt::Cdvcs,
    writers: &mut crate::crdt::authorship::Writers,
) -> Vec<String> {
    use crate::crdt::authorship::WriterSource as _;
    let stored = crate::store::writers::StoreWriters::new(store.clone(), key.clone());
    let mut problems = Vec::new();
    for (id, _) in cdvcs.entries() {
        let expected = writers.record(&id);
        match (stored.record(&id), expected) {
            (Ok(None), _) => {}
            (Ok(Some(found)), Ok(Some(expected))) if found == expected => {}
            (Ok(Some(_)), Ok(_)) => problems.push(format!(
                "CDVCS {key}: the writer record of commit {id} differs from what its history gives"
            )),
            (Err(e), _) => problems.push(format!("CDVCS {key}: {e}")),
            (_, Err(e)) => problems.push(format!("CDVCS {key}: commit {id}: {e}")),
        }
    }
    problems
}
