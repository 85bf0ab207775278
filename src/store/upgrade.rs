//! `replikativ upgrade`: rewrite a store of an older format in this build's, beside the old
//! one, verify it, and swap it in atomically, keeping the old file as a backup.
//!
//! # Steps, and what a kill at any point leaves
//!
//! The old file `DIR/store.redb` is only read (redb's read-only open writes nothing) and kept
//! open, so no node can write it meanwhile; it stays the store until the one atomic rename.
//!
//! 1. Build `DIR/upgrade-to-format-4/store.redb`: every state record and blob as it is (each
//!    sealed with its checksum as the new store writes it), each
//!    commit's record loose with its params packed together and found through it (the CDVCS
//!    graphs say which commits there are), then any other value loose. The old store is of
//!    format 1 (every value loose), 2 (packs, a per-value index) or 3 (unsealed state
//!    records); all are read the same way. Killed here: the next run removes the
//!    half-built directory and starts again.
//! 2. Verify it ([`Store::verify`]: every value re-hashed, every pack decoded) and compare it
//!    with the old store both ways: the same state records, blobs and values, byte for byte.
//!    Then write the marker `complete` in the work directory and sync it. Killed before the
//!    marker is durable: start again; after: the next run compares again and goes on.
//! 3. Hard-link the old file as the backup `DIR/store.format-N.redb` (N its format, see
//!    [`backup_name`]) and sync `DIR` (the old
//!    store is then under both names), rename the new file over `DIR/store.redb` (atomic: the
//!    name holds the old store or the new one, never neither) and sync `DIR`. Killed before
//!    the rename: the next run compares again and renames; after: the store is of the new
//!    format and the next run only removes the work directory.

use std::collections::HashSet;
use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::crdt::Commit;
use crate::id::{Id, Verified};
use crate::store::cdvcs;
use crate::store::{FILE_NAME, FORMAT_VERSION, Store, StoreError, WriteBatch};

/// The work directory inside the store directory.
pub const WORK_DIR: &str = "upgrade-to-format-4";
/// The old store of format 1, kept beside the new one (see [`backup_name`]).
pub const BACKUP_NAME: &str = "store.format-1.redb";

/// The name the old store of format `format` is kept under, beside the new one.
pub fn backup_name(format: u32) -> String {
    format!("store.format-{format}.redb")
}
const COMPLETE: &str = "complete";

mod compare;
use compare::compare;
/// Bytes of values per write transaction while copying.
const GROUP_BYTES: usize = 16 << 20;

/// What [`upgrade`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgraded {
    /// The store was already of this build's format (a finished upgrade's leftovers removed).
    AlreadyCurrent,
    /// The store was rewritten; the old one is kept at `backup`.
    Done {
        /// The old store file.
        backup: PathBuf,
        /// What the new store holds.
        counts: Counts,
    },
}

/// What a store holds, as compared between the old and the new.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Values (loose and packed).
    pub values: u64,
    /// Packs in the new store.
    pub packs: u64,
    /// State records.
    pub state: u64,
    /// Blobs.
    pub blobs: u64,
}

/// Why an upgrade stopped (the old store is unchanged: it is only read until the rename).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpgradeError {
    /// Reading the old store or writing the new one failed.
    #[error("{what}")]
    Store {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A file operation failed.
    #[error("{what} {}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The new store does not hold exactly what the old one does (nothing was swapped).
    #[error("the rewritten store differs from the old one: {0}")]
    Mismatch(String),
    /// The old store cannot be read as a store of its format.
    #[error("the old store is damaged: {0}")]
    Damaged(String),
    /// A file is where the backup goes.
    #[error("{} exists and is not this store: move it away, then upgrade again", .0.display())]
    BackupInTheWay(PathBuf),
    /// No store in the directory.
    #[error("there is no store at {} (no {FILE_NAME} in it)", .0.display())]
    NoStore(PathBuf),
}

fn store_err(what: impl Into<String>) -> impl FnOnce(StoreError) -> UpgradeError {
    let what = what.into();
    move |source| UpgradeError::Store { what, source }
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> UpgradeError {
    let path = path.to_path_buf();
    move |e| UpgradeError::Io {
        what,
        path,
        source: Arc::new(e),
    }
}

/// Upgrades the store in `dir` to this build's format (see the module doc); `progress` hears
/// what it is doing.
pub fn upgrade(dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Upgraded, UpgradeError> {
    let file = dir.join(FILE_NAME);
    if !file.is_file() {
        return Err(UpgradeError::NoStore(dir.to_path_buf()));
    }
    let work = dir.join(WORK_DIR);
    let old = open_old(dir, progress)?;
    let format = old
        .format()
        .map_err(store_err("reading the store's format"))?;
    let backup = dir.join(backup_name(format));
    if format >= FORMAT_VERSION {
        drop(old);
        remove_dir(&work)?;
        return Ok(Upgraded::AlreadyCurrent);
    }
    if backup.exists() && !same_file(&backup, &file)? {
        return Err(UpgradeError::BackupInTheWay(backup));
    }
    let counts = match resume(&old, &work, progress)? {
        Some(counts) => counts,
        None => build(&old, &work, progress)?,
    };
    // The old store stays open (no writer can take it) until the new one has its name.
    if !backup.exists() {
        fs::hard_link(&file, &backup).map_err(io_err("keeping the old store as", &backup))?;
        sync_dir(dir)?;
    }
    fs::rename(work.join(FILE_NAME), &file).map_err(io_err("renaming the new store to", &file))?;
    sync_dir(dir)?;
    drop(old);
    remove_dir(&work)?;
    sync_dir(dir)?;
    Ok(Upgraded::Done { backup, counts })
}

/// The counts of a new store a previous run built and verified, compared with `old` again;
/// `None` when there is none, or it no longer matches (the old store was written since).
fn resume(
    old: &Store,
    work: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Option<Counts>, UpgradeError> {
    if !(work.join(COMPLETE).is_file() && work.join(FILE_NAME).is_file()) {
        return Ok(None);
    }
    progress("comparing the store an earlier run built with the old one again");
    let new = Store::open(work).map_err(store_err("opening the rewritten store"))?;
    match compare(old, &new) {
        Ok(counts) => Ok(Some(counts)),
        Err(UpgradeError::Mismatch(why)) => {
            progress(&format!("it no longer matches ({why}): building it again"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Builds the new store in `work` from scratch, verifies it against `old`, and marks it
/// complete (durably).
fn build(old: &Store, work: &Path, progress: &mut dyn FnMut(&str)) -> Result<Counts, UpgradeError> {
    remove_dir(work)?;
    fs::create_dir_all(work).map_err(io_err("creating", work))?;
    let new = Store::open(work).map_err(store_err("creating the new store"))?;
    progress("copying state records, blobs and values");
    copy(old, &new, progress)?;
    progress("verifying the new store and comparing it with the old one");
    let counts = compare(old, &new)?;
    drop(new);
    let complete = work.join(COMPLETE);
    fs::File::create(&complete)
        .and_then(|f| f.sync_all())
        .map_err(io_err("writing", &complete))?;
    sync_dir(work)?;
    Ok(counts)
}

/// The old store, read-only; one that was not shut down cleanly is repaired by redb first
/// (its records are unchanged: the repair rebuilds redb's allocator state from them).
fn open_old(dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Store, UpgradeError> {
    match Store::open_read_only(dir) {
        Err(StoreError::Unclean { path }) => {
            progress("the store was not shut down cleanly: letting redb repair it first");
            let repaired = std::panic::catch_unwind(|| redb::Database::open(&path).map(drop));
            match repaired {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(UpgradeError::Store {
                        what: "repairing the old store".into(),
                        source: StoreError::Damaged {
                            path,
                            detail: e.to_string(),
                        },
                    });
                }
                Err(_) => {
                    return Err(UpgradeError::Store {
                        what: "repairing the old store".into(),
                        source: StoreError::Damaged {
                            path,
                            detail: "redb panicked while repairing it".into(),
                        },
                    });
                }
            }
            Store::open_read_only(dir).map_err(store_err("opening the repaired store"))
        }
        other => other.map_err(store_err("opening the store read-only")),
    }
}

fn same_file(a: &Path, b: &Path) -> Result<bool, UpgradeError> {
    use std::os::unix::fs::MetadataExt;
    let ma = fs::metadata(a).map_err(io_err("reading", a))?;
    let mb = fs::metadata(b).map_err(io_err("reading", b))?;
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

fn remove_dir(dir: &Path) -> Result<(), UpgradeError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("removing", dir)(e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), UpgradeError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing the directory", dir))
}

/// Batches written together in one transaction, up to [`GROUP_BYTES`].
struct Writer<'a> {
    store: &'a Store,
    pending: Vec<WriteBatch>,
    bytes: usize,
}

impl Writer<'_> {
    fn push(&mut self, batch: WriteBatch) -> Result<(), UpgradeError> {
        self.bytes += batch.byte_size();
        self.pending.push(batch);
        if self.bytes >= GROUP_BYTES || self.pending.len() >= 1024 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), UpgradeError> {
        let group: Vec<&WriteBatch> = self.pending.iter().collect();
        self.store
            .write_group(&group)
            .map_err(store_err("writing the new store"))?;
        self.pending.clear();
        self.bytes = 0;
        Ok(())
    }
}

fn copy(old: &Store, new: &Store, progress: &mut dyn FnMut(&str)) -> Result<(), UpgradeError> {
    let mut out = Writer {
        store: new,
        pending: Vec::new(),
        bytes: 0,
    };
    let (mut batch, mut bytes) = (WriteBatch::new(), 0);
    let mut failed = None;
    old.visit_state(b"", |k, v| {
        batch.put_state(k.to_vec(), v.to_vec());
        bytes += k.len() + v.len();
        if bytes >= GROUP_BYTES / 4 {
            bytes = 0;
            if let Err(e) = out.push(std::mem::take(&mut batch)) {
                failed = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    })
    .map_err(store_err("reading the old store's state records"))?;
    failed.map_or(Ok(()), Err)?;
    for (_, bytes) in old
        .all_blobs()
        .map_err(store_err("reading the old store's blobs"))?
    {
        let mut b = WriteBatch::new();
        b.put_blob(bytes);
        out.push(b)?;
    }
    out.push(batch)?;
    let crdts = old
        .list_crdts()
        .map_err(store_err("listing the old store's CRDTs"))?;
    // The ids copied so far (a set in memory: a lookup by id alone in the new store would
    // search every pack for a param, see `packs.rs`).
    let mut copied: HashSet<Id> = HashSet::new();
    for key in crdts {
        let Some(graph) = cdvcs::load(old, &key)
            .map_err(|e| UpgradeError::Damaged(replikativ_actors::error_chain(&e)))?
        else {
            continue;
        };
        progress(&format!("CDVCS {key}: {} commits", graph.entries().count()));
        for (id, _) in graph.entries() {
            let batch = commit_batch(old, &id)?;
            copied.extend(batch.value_ids().copied());
            out.push(batch)?;
        }
    }
    out.flush()?;
    // Whatever no commit references (stored by other means), loose.
    let mut rest = Vec::new();
    old.for_each_value(|id, _| {
        if !copied.contains(&id) {
            rest.push(id);
        }
        ControlFlow::Continue(())
    })
    .map_err(store_err("reading the old store's values"))?;
    rest.sort();
    rest.dedup();
    for id in rest {
        let mut b = WriteBatch::new();
        if let Some(bytes) = old.get_value(&id).map_err(store_err("reading a value"))? {
            b.put_record(Verified::hashed(id, bytes));
        }
        out.push(b)?;
    }
    out.flush()
}

/// Commit `id`'s record (loose) and its params (packed together), from the old store.
fn commit_batch(old: &Store, id: &Id) -> Result<WriteBatch, UpgradeError> {
    let read = |v: &Id| {
        old.get_value(v)
            .map_err(store_err(format!("reading value {v} of commit {id}")))
    };
    let mut batch = WriteBatch::new();
    let Some(record) = read(id)? else {
        return Ok(batch);
    };
    let params: Vec<Id> = match Commit::decode(&record) {
        Ok(c) if !c.commit.parents.is_empty() => {
            c.commit.transactions.iter().map(|t| t.params).collect()
        }
        _ => Vec::new(),
    };
    batch.put_commit(Verified::hashed(*id, record), params.clone());
    for p in params {
        if let Some(bytes) = read(&p)? {
            batch.put_verified_value(Verified::hashed(p, bytes));
        }
    }
    Ok(batch)
}
