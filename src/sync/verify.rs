//! Verification of a received `Commits` frame together with the values buffered before it.
//! All or nothing: the first failure refuses the whole batch.

use std::collections::{HashMap, HashSet};

use crate::crdt::commit::Commit;
use crate::id::Id;
use crate::protocol::Blob;

use super::effect::{SyncError, VerifiedBatch};
use super::graph::Overlay;

/// A refused batch: the offending id and why.
pub(crate) type Refusal = (Id, SyncError);

/// Re-hashes and decodes `commits`, checks every parent is earlier in the batch or present,
/// and attaches the referenced values from `values` (unreferenced ones are dropped).
/// Commits already present are skipped (duplicates are harmless).
pub(crate) fn verify(
    commits: Vec<Blob>,
    values: Vec<Blob>,
    have: &Overlay<'_>,
) -> Result<VerifiedBatch, Refusal> {
    let mut buffered: HashMap<Id, Vec<u8>> = HashMap::with_capacity(values.len());
    for v in values {
        if let Some(actual) = v.forged() {
            return Err((
                v.id,
                SyncError::HashMismatch {
                    claimed: v.id,
                    actual,
                },
            ));
        }
        buffered.insert(v.id, v.bytes.0);
    }
    let mut batch = VerifiedBatch::default();
    let mut in_batch: HashSet<Id> = HashSet::new();
    let mut carried: HashSet<Id> = HashSet::new();
    let mut to_check: HashSet<Id> = HashSet::new();
    for blob in commits {
        if let Some(actual) = blob.forged() {
            return Err((
                blob.id,
                SyncError::HashMismatch {
                    claimed: blob.id,
                    actual,
                },
            ));
        }
        let id = blob.id;
        let encoded = Commit::decode(&blob.bytes.0)
            .map_err(|source| (id, SyncError::UndecodableCommit { id, source }))?;
        if have.contains(&id) || in_batch.contains(&id) {
            continue;
        }
        for parent in &encoded.commit.parents {
            if !in_batch.contains(parent) && !have.contains(parent) {
                return Err((
                    id,
                    SyncError::MissingParent {
                        commit: id,
                        parent: *parent,
                    },
                ));
            }
        }
        for tx in &encoded.commit.transactions {
            if carried.contains(&tx.params) {
                continue;
            }
            match buffered.remove(&tx.params) {
                Some(bytes) => {
                    carried.insert(tx.params);
                    batch.values.push((tx.params, bytes));
                }
                None => {
                    if to_check.insert(tx.params) {
                        batch.values_to_check.push(tx.params);
                    }
                }
            }
        }
        in_batch.insert(id);
        batch.commits.push(encoded);
    }
    Ok(batch)
}
