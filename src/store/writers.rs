//! The writer rule's records of an owned CDVCS in the store (DESIGN §11): each commit's
//! record (`keys::writer_record`) is written in the batch that stores the commit, so a
//! replica judges new commits from their parents' records — O(1) reads each, memory flat in
//! history — instead of judging the whole history on first use.
//!
//! A CDVCS stored before records were kept has none: [`open`] judges its history once (the
//! whole graph, in memory, as the generations were added) and writes every record, the heads'
//! last, so an interrupted run is redone by the next.

use std::sync::Arc;

use crate::crdt::authorship::{
    Authorship, RuleError, WriterRecord, WriterSource, Writers, authorship,
};
use crate::crdt::cdvcs::SourceError;
use crate::crdt::{Cdvcs, CrdtKey};
use crate::id::Id;
use crate::store::cdvcs::{JudgeError, load_commit_record};
use crate::store::{Store, WriteBatch, keys};

/// Records per write transaction when the records of an older CDVCS are written.
const MIGRATE_BATCH: usize = 10_000;

/// The records of one stored CDVCS, answered by point reads.
pub struct StoreWriters {
    store: Store,
    key: CrdtKey,
}

impl StoreWriters {
    /// The records of `key` in `store`.
    pub fn new(store: Store, key: CrdtKey) -> StoreWriters {
        StoreWriters { store, key }
    }
}

impl WriterSource for StoreWriters {
    fn record(&self, id: &Id) -> Result<Option<WriterRecord>, SourceError> {
        let k = keys::writer_record(&self.key.user, &self.key.id, id);
        let raw = self.store.get_state(&k).map_err(|e| {
            tracing::error!(cdvcs = %self.key, commit = %id, error = %e, "reading a writer record");
            SourceError(format!("CDVCS {}: {e}", self.key))
        })?;
        raw.map(|raw| {
            WriterRecord::decode(&raw).map_err(|e| {
                SourceError(format!(
                    "CDVCS {}: the writer record of commit {id} is damaged ({e}); `replikativ verify --store DIR` lists the damage",
                    self.key
                ))
            })
        })
        .transpose()
    }
}

/// The batch that stores `records` (commit id, record) of `key`.
pub fn records_batch(key: &CrdtKey, records: &[(Id, WriterRecord)]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for (id, record) in records {
        batch.put_state(keys::writer_record(&key.user, &key.id, id), record.encode());
    }
    batch
}

/// A writer-rule failure as the stored CDVCS `key`'s.
pub fn judge_error(key: &CrdtKey, e: RuleError) -> JudgeError {
    match e {
        RuleError::Refused(source) => JudgeError::Refused {
            key: key.clone(),
            source,
        },
        other => JudgeError::Record {
            key: key.clone(),
            source: other,
        },
    }
}

/// The writer rule of the stored owned CDVCS `key` (whose state is `cdvcs`), reading its
/// records from `store`. When its heads have no records (stored before they were kept), its
/// history is judged and every record written first, once.
pub fn open(store: &Store, key: &CrdtKey, cdvcs: &Cdvcs) -> Result<Writers, JudgeError> {
    let source = Arc::new(StoreWriters::new(store.clone(), key.clone()));
    let root = crate::crdt::Commit::root(key).id;
    let mut unrecorded = false;
    for head in cdvcs.heads().iter().filter(|h| **h != root) {
        let record = source.record(head).map_err(|source| JudgeError::Record {
            key: key.clone(),
            source: RuleError::Source { id: *head, source },
        })?;
        unrecorded = unrecorded || record.is_none();
    }
    if unrecorded {
        write_records(store, key, cdvcs, Arc::clone(&source))?;
    }
    Ok(Writers::backed(key, source))
}

/// Judges the history of `key` (parents first) and writes every commit's record, the heads'
/// last; commits whose records a run before this one wrote are passed over. The commits were
/// checked when they were stored: their signatures are taken as stored (`replikativ verify`
/// checks them again).
fn write_records(
    store: &Store,
    key: &CrdtKey,
    cdvcs: &Cdvcs,
    source: Arc<StoreWriters>,
) -> Result<(), JudgeError> {
    let mut rule = Writers::backed(key, source);
    let heads = cdvcs.heads().clone();
    let mut batch = Vec::new();
    let mut last = Vec::new();
    let mut judged = 0usize;
    for head in &heads {
        let order = cdvcs.history(head).map_err(|_| JudgeError::Missing {
            key: key.clone(),
            id: *head,
        })?;
        for id in order {
            if rule.knows(&id).map_err(|e| judge_error(key, e))? {
                continue;
            }
            let stored = load_commit_record(store, &id)?.ok_or_else(|| JudgeError::Missing {
                key: key.clone(),
                id,
            })?;
            let who = stored_authorship(key, &id, &stored)?;
            let record = rule
                .judge(&id, &stored.commit, who)
                .map_err(|e| judge_error(key, e))?;
            judged += 1;
            if heads.contains(&id) {
                last.push((id, record));
            } else {
                batch.push((id, record));
            }
            if batch.len() == MIGRATE_BATCH {
                write(store, key, &records_batch(key, &batch))?;
                rule.stored(batch.drain(..).map(|(id, _)| id));
                tracing::info!(cdvcs = %key, commits = judged, "writing the writer rule's records (once)");
            }
        }
    }
    write(store, key, &records_batch(key, &batch))?;
    write(store, key, &records_batch(key, &last))?;
    tracing::info!(cdvcs = %key, commits = judged, "wrote the writer rule's record of each commit (once)");
    Ok(())
}

/// Who made a stored commit: its author's key when it carries a signature (checked when it
/// was stored), else as [`authorship`] decides (the root, deterministic merges).
fn stored_authorship(
    key: &CrdtKey,
    id: &Id,
    stored: &crate::crdt::EncodedCommit,
) -> Result<Authorship, JudgeError> {
    if stored.signature.is_some()
        && let Ok(author) = stored.commit.author.parse()
    {
        return Ok(Authorship::Signed(author));
    }
    authorship(key, id, &stored.commit, stored.signature.as_ref()).map_err(|source| {
        JudgeError::Refused {
            key: key.clone(),
            source,
        }
    })
}

fn write(store: &Store, key: &CrdtKey, batch: &WriteBatch) -> Result<(), JudgeError> {
    store.write(batch).map_err(|source| {
        JudgeError::Load(crate::store::cdvcs::LoadError::Store {
            key: key.clone(),
            source: Box::new(source),
        })
    })
}

/// The stored CDVCS `key` with its whole history judged by the writer rule (parents first);
/// `None` when the store does not hold it. For decisions before a node runs, e.g. whether a
/// key may write an owned CDVCS by the grants this store holds.
pub fn judge_stored(store: &Store, key: &CrdtKey) -> Result<Option<(Cdvcs, Writers)>, JudgeError> {
    let Some(cdvcs) = crate::store::cdvcs::load(store, key)? else {
        return Ok(None);
    };
    let writers = judge_history(store, key, &cdvcs)?;
    Ok(Some((cdvcs, writers)))
}

/// The writer rule over the whole history of `cdvcs` (the CDVCS `key` as held in memory),
/// reading each commit record from `store`, parents first.
pub fn judge_history(store: &Store, key: &CrdtKey, cdvcs: &Cdvcs) -> Result<Writers, JudgeError> {
    let mut writers = Writers::new(key);
    for head in cdvcs.heads() {
        let order = cdvcs.history(head).map_err(|_| JudgeError::Missing {
            key: key.clone(),
            id: *head,
        })?;
        for id in order {
            if writers.knows(&id).map_err(|e| judge_error(key, e))? {
                continue;
            }
            let commit = load_commit_record(store, &id)?.ok_or_else(|| JudgeError::Missing {
                key: key.clone(),
                id,
            })?;
            let refused = |source| JudgeError::Refused {
                key: key.clone(),
                source,
            };
            let who =
                authorship(key, &id, &commit.commit, commit.signature.as_ref()).map_err(refused)?;
            writers
                .judge(&id, &commit.commit, who)
                .map_err(|e| judge_error(key, e))?;
        }
    }
    Ok(writers)
}

#[cfg(test)]
#[path = "writers_tests.rs"]
mod tests;
