//! Verification of a received `Commits` frame together with the values and packs buffered
//! before it.
//! All or nothing: the first failure refuses the whole batch.
//!
//! Content arrives as [`Checked`]: hashed once where it entered (the codec, or the session
//! for a message handed to it directly). Nothing here hashes: a verified id is taken as
//! proven, and commits are decoded from their verified bytes.

use std::collections::{HashMap, HashSet};

use crate::crdt::authorship::Signature;
use crate::crdt::commit::{Commit, CommitDecodeError, EncodedCommit};
use crate::id::{Forged, Id, Verified};
use crate::pack::{PackCheckError, VerifiedPack};
use crate::protocol::WirePack;

use super::effect::{SyncError, VerifiedBatch};
use super::graph::Overlay;

/// A received value or commit, hashed once: verified, or found forged.
pub(crate) type Checked = Result<Verified, Forged>;

/// A received pack, decoded within its bound and each value hashed once: verified, or why not.
pub(crate) type CheckedPack = Result<VerifiedPack, PackCheckError>;

/// Checks a pack handed to the session directly (not through the codec).
pub(crate) fn check_pack(p: WirePack) -> CheckedPack {
    VerifiedPack::check(p.bytes.0, p.ids, crate::pack::MAX_PACK_BYTES)
}

fn bad_pack(e: PackCheckError) -> Refusal {
    let id = match &e {
        PackCheckError::Forged { claimed, .. } => *claimed,
        PackCheckError::Pack { pack, .. } | PackCheckError::Count { pack, .. } => *pack,
    };
    (id, SyncError::Pack(e))
}

/// A refused batch: the offending id and why.
pub(crate) type Refusal = (Id, SyncError);

fn forged(f: Forged) -> Refusal {
    (
        f.claimed,
        SyncError::HashMismatch {
            claimed: f.claimed,
            actual: f.actual,
        },
    )
}

/// Decodes `commits` (keeping each one's signature from `signatures`, which is empty or one
/// per commit), checks every parent is earlier in the batch or present, and attaches
/// the referenced values from `values` (unreferenced ones are dropped). Commits already
/// present are skipped (duplicates are harmless). Params neither carried nor of a parentless
/// commit (a root's param is its CDVCS id's hash, not a stored value) are listed once in
/// `values_to_check`, for the store to confirm.
pub(crate) fn verify(
    commits: Vec<Checked>,
    signatures: &[Option<Signature>],
    values: Vec<Checked>,
    packs: Vec<CheckedPack>,
    have: &Overlay<'_>,
) -> Result<VerifiedBatch, Refusal> {
    let mut buffered: HashMap<Id, Verified> = HashMap::with_capacity(values.len());
    for v in values {
        let v = v.map_err(forged)?;
        buffered.insert(v.id(), v);
    }
    let packs: Vec<VerifiedPack> = packs
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(bad_pack)?;
    // Each packed value's pack; a pack is kept when a commit of the batch names one of them.
    let mut in_packs: HashMap<Id, usize> = HashMap::new();
    for (i, p) in packs.iter().enumerate() {
        for id in p.ids() {
            in_packs.entry(*id).or_insert(i);
        }
    }
    let mut used = vec![false; packs.len()];
    let mut batch = VerifiedBatch::default();
    let mut in_batch: HashSet<Id> = HashSet::new();
    let mut carried: HashSet<Id> = HashSet::new();
    let mut to_check: HashSet<Id> = HashSet::new();
    for (i, item) in commits.into_iter().enumerate() {
        let signature = signatures.get(i).copied().flatten();
        let (id, bytes) = item.map_err(forged)?.into_parts();
        let commit: Commit = rmp_serde::from_slice(&bytes).map_err(|e| {
            let source = CommitDecodeError::from(e);
            (id, SyncError::UndecodableCommit { id, source })
        })?;
        if have.contains(&id) || in_batch.contains(&id) {
            continue;
        }
        for parent in &commit.parents {
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
        for tx in &commit.transactions {
            if carried.contains(&tx.params) {
                continue;
            }
            if let Some(&i) = in_packs.get(&tx.params) {
                used[i] = true;
                carried.insert(tx.params);
                continue;
            }
            match buffered.remove(&tx.params) {
                Some(value) => {
                    carried.insert(tx.params);
                    batch.values.push(value);
                }
                None => {
                    if !commit.parents.is_empty() && to_check.insert(tx.params) {
                        batch.values_to_check.push(tx.params);
                    }
                }
            }
        }
        in_batch.insert(id);
        // The id is the hash of exactly these bytes (checked on receipt).
        batch.commits.push(EncodedCommit {
            id,
            bytes,
            commit,
            signature,
        });
    }
    batch.packs = packs
        .into_iter()
        .zip(used)
        .filter_map(|(p, used)| used.then_some(p))
        .collect();
    Ok(batch)
}

/// Verifies content read back from where it was kept as received (the browser peer keeps its
/// replica's batches in IndexedDB): the checks of a received batch, with `graph` as what is
/// already held. Each item was hashed once when it was read back (by the codec).
pub fn verify_stored(
    commits: Vec<Verified>,
    signatures: &[Option<Signature>],
    values: Vec<Verified>,
    packs: Vec<VerifiedPack>,
    graph: &dyn super::GraphView,
) -> Result<VerifiedBatch, (Id, SyncError)> {
    let inflight = HashSet::new();
    let have = Overlay {
        graph,
        inflight: &inflight,
    };
    verify(
        commits.into_iter().map(Ok).collect(),
        signatures,
        values.into_iter().map(Ok).collect(),
        packs.into_iter().map(Ok).collect(),
        &have,
    )
}
