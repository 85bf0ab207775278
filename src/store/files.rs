//! The store's file: creating it atomically, telling a redb file of ours from anything else,
//! and opening it (for writing, repaired by redb after an unclean shutdown; or read-only
//! without writing to it). No open checks the whole file: reads find damage themselves
//! (`integrity.rs`).

use std::fs;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use redb::{Database, DatabaseError, ReadOnlyDatabase, StorageBackend, StorageError};

use crate::store::error::StoreError;
use crate::store::meta::{check_or_write_meta, read_format};
use crate::store::open::{CACHE_BYTES, FILE_NAME, FORMAT_VERSION};

const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// The error for a store of format `found`, older than this build's.
pub(crate) fn older(path: &Path, found: u32) -> StoreError {
    StoreError::OlderFormat {
        path: path.to_path_buf(),
        dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
        found,
        supported: FORMAT_VERSION,
    }
}

/// The format of the store file at `path`, read without writing to it; `None` when that
/// cannot be told so (in use, not shut down cleanly, damaged: the full open then says why).
pub(crate) fn peek_format(path: &Path) -> Option<u32> {
    let db = open_checked_read_only(path).ok()?;
    crate::store::integrity::guarded(path, "reading the format", || read_format(&db, path))
        .ok()
        .flatten()
}

/// Opens the redb file at `path` read-only; a panic in redb is a damaged file.
pub(crate) fn open_checked_read_only(path: &Path) -> Result<ReadOnlyDatabase, StoreError> {
    crate::store::integrity::guarded(path, "opening read-only", || {
        match redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .open_read_only(path)
        {
            Ok(db) => Ok(db),
            Err(DatabaseError::RepairAborted) => Err(StoreError::Unclean {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(open_error(path, e)),
        }
    })
}

/// Opens the redb file at `path` (no full-file check); a panic in redb is a damaged file.
pub(crate) fn open_file(path: &Path) -> Result<Database, StoreError> {
    refuse_non_redb(path)?;
    open_checked(path, &|builder: &mut redb::Builder| builder.create(path))
}

/// Like [`open_file`], over a custom backend (`shown` names it).
pub(crate) fn open_backend<B: StorageBackend + Clone>(
    backend: B,
    shown: &Path,
) -> Result<Database, StoreError> {
    let io = |e: std::io::Error| StoreError::Io {
        path: shown.to_path_buf(),
        source: Arc::new(e),
    };
    let len = backend.len().map_err(io)?;
    if len > 0 {
        let mut head = [0u8; REDB_MAGIC.len()];
        let n = head.len().min(len as usize);
        backend.read(0, &mut head[..n]).map_err(io)?;
        if head[..n] != REDB_MAGIC[..n] || n < REDB_MAGIC.len() {
            return Err(StoreError::NotAStore {
                path: shown.to_path_buf(),
                reason: "not a redb database (wrong magic bytes)".into(),
            });
        }
    }
    open_checked(shown, &|builder: &mut redb::Builder| {
        builder.create_with_backend(backend.clone())
    })
}

/// Runs `open` on a builder with the store's cache size and without redb's full-file integrity
/// check (it reads every page: seconds on a large store); redb still repairs a file that was
/// not shut down cleanly. When that open finds the file damaged (an error, or a panic in
/// redb, e.g. on a damaged allocator state), it is tried once more with the integrity check,
/// which repairs what redb can rebuild and otherwise reports the damage: the store named
/// `shown` is then [`StoreError::Damaged`], never a panic.
pub(crate) fn open_checked(
    shown: &Path,
    open: &dyn Fn(&mut redb::Builder) -> Result<Database, redb::DatabaseError>,
) -> Result<Database, StoreError> {
    let attempt = |check: bool| {
        crate::store::integrity::guarded(shown, "opening", || {
            let mut builder = redb::Builder::new();
            builder
                .set_check_integrity_on_open(check)
                .set_cache_size(CACHE_BYTES);
            open(&mut builder).map_err(|e| open_error(shown, e))
        })
    };
    match attempt(false) {
        Err(StoreError::Damaged { .. }) => attempt(true),
        other => other,
    }
}

/// Creates a new store file atomically: built under a temporary name and renamed into place.
/// redb writes its magic bytes last and refuses a non-empty file without them, so a process
/// killed while creating `store.redb` in place left a store that could never be opened again.
pub(crate) fn create_fresh(dir: &Path, path: &Path) -> Result<(), StoreError> {
    let tmp = dir.join(format!("{FILE_NAME}.creating"));
    let io = |p: &Path, e: std::io::Error| StoreError::Io {
        path: p.to_path_buf(),
        source: Arc::new(e),
    };
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&tmp, e)),
    }
    let created = catch_unwind(AssertUnwindSafe(|| redb::Builder::new().create(&tmp)));
    let db = match created {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return Err(open_error(&tmp, e)),
        Err(panic) => {
            return Err(StoreError::Damaged {
                path: tmp,
                detail: format!(
                    "redb panicked while creating: {}",
                    replikativ_actors::panic_message(panic.as_ref())
                ),
            });
        }
    };
    check_or_write_meta(&db, &tmp)?;
    drop(db);
    fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    // Make the new name durable too (best effort: not every file system syncs directories).
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A non-empty file that does not start with redb's magic bytes is someone else's file.
pub(crate) fn refuse_non_redb(path: &Path) -> Result<(), StoreError> {
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source: Arc::new(e),
            });
        }
    };
    let mut head = Vec::with_capacity(REDB_MAGIC.len());
    (&mut file)
        .take(REDB_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::Io {
            path: path.to_path_buf(),
            source: Arc::new(e),
        })?;
    if head.is_empty() || head == REDB_MAGIC {
        return Ok(());
    }
    Err(StoreError::NotAStore {
        path: path.to_path_buf(),
        reason: "not a redb database file (wrong magic bytes)".into(),
    })
}

pub(crate) fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::InUse { path }
        }
        DatabaseError::UpgradeRequired(v) => StoreError::NotAStore {
            path,
            reason: format!("written in the old redb file format {v}"),
        },
        DatabaseError::Storage(StorageError::Corrupted(detail)) => {
            StoreError::Damaged { path, detail }
        }
        DatabaseError::Storage(StorageError::Io(e)) => StoreError::Io {
            path,
            source: Arc::new(e),
        },
        other => StoreError::Open {
            path,
            source: Arc::new(other.into()),
        },
    }
}
