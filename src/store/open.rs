//! [`Store`]: the handle, and opening a file (or memory) as a store.
//!
//! Opening checks, in order: the file is redb (magic bytes), redb can open it with its
//! integrity check (a damaged file is refused here, not on some later read), nobody else holds
//! it, and its meta table says it is a replikativ store of a format this build understands.
//!
//! # After an I/O error
//!
//! redb latches the first I/O error of its storage (a failed write, sync, read or resize):
//! from then on every operation of that `Database` fails with "previous I/O error, close and
//! re-open the database". A store therefore notes any such error and, on its next read or
//! write, drops the failed `Database` and opens the same file (or backend) again, with the same
//! checks as [`Store::open`]; redb's recovery then rolls back whatever the failed commit left
//! half-written. While the storage keeps failing (a full disk), the reopen fails and each
//! operation reports why; once it works again, the store does too, with no restart.

use std::fs;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use redb::{
    Database, DatabaseError, ReadTransaction, ReadableDatabase, StorageBackend, StorageError,
    TableDefinition, WriteTransaction,
};

use crate::store::error::StoreError;
use crate::store::meta::check_or_write_meta;

/// The newest store format this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// redb's page cache per store (redb's default is 1 GiB, which a node then holds in RSS once
/// it has read or written that much; two peers ingesting 10^6 tweets peaked at 2.4 GiB).
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// The file name of a store inside its directory.
pub const FILE_NAME: &str = "store.redb";

const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Format metadata: `kind` and `format` (u32 big-endian).
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("replikativ_meta");
/// Content-addressed MessagePack values: 32-byte id → bytes.
pub(crate) const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("values");
/// Content-addressed binary blobs: 32-byte id → bytes.
pub(crate) const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
/// Mutable records: key → bytes (layout in [`crate::store::keys`]).
pub(crate) const STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");

/// A cheap, cloneable handle on one open store; usable from any thread.
///
/// Reads run on the caller's thread and never wait for writes (redb gives each read its own
/// snapshot). Writes are durable when [`Store::write`] returns.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// `None` after an I/O error dropped it, until a reopen succeeds.
    db: RwLock<Option<Database>>,
    /// Opens the same storage again after an I/O error (`None`: the in-memory backend).
    reopen: Option<Reopen>,
    /// An I/O error latched the current `Database`: the next operation reopens it.
    io_failed: AtomicBool,
    /// `None` for the in-memory backend and custom backends.
    pub(crate) path: Option<PathBuf>,
    /// The file, or the label of a custom backend, for messages.
    pub(crate) shown: PathBuf,
    /// Write transactions committed through this handle (and its clones).
    pub(crate) commits: AtomicU64,
}

type Reopen = Box<dyn Fn() -> Result<Database, StoreError> + Send + Sync>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.shown)
            .finish()
    }
}

/// The store's current `Database`, held (shared) for the length of a write, so that a reopen
/// never drops it under a commit.
pub(crate) struct DbGuard<'a> {
    guard: RwLockReadGuard<'a, Option<Database>>,
    shown: &'a Path,
}

impl DbGuard<'_> {
    fn db(&self) -> Result<&Database, StoreError> {
        self.guard.as_ref().ok_or_else(|| StoreError::Damaged {
            path: self.shown.to_path_buf(),
            detail: "the database is closed after an I/O error and could not be reopened".into(),
        })
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        self.db()?
            .begin_write()
            .map_err(|e| StoreError::txn("beginning a write", e))
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        self.db()?
            .begin_read()
            .map_err(|e| StoreError::txn("beginning a read", e))
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, file `dir/store.redb`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            source: Arc::new(e),
        })?;
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            create_fresh(dir, &path)?;
        }
        let db = open_file(&path)?;
        let again = path.clone();
        let reopen: Reopen = Box::new(move || open_file(&again));
        Store::init(db, Some(path.clone()), path, Some(reopen))
    }

    /// A fresh store in memory (redb's in-memory backend), for tests.
    pub fn in_memory() -> Result<Store, StoreError> {
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| open_error(Path::new(":memory:"), e))?;
        Store::init(db, None, PathBuf::from(":memory:"), None)
    }

    /// Opens (creating if empty) a store over a custom redb storage backend, with the checks of
    /// [`Store::open`]: redb's magic bytes, redb's integrity check, the meta table and format.
    /// `label` names the store in errors and logs.
    ///
    /// For embedding over other media, and for fault injection: the store has no test hooks of
    /// its own, so the tests inject failing writes, held syncs and power cuts that lose unsynced
    /// data through a simulated disk opened here. `backend` is a handle on the medium:
    /// after an I/O error the store reopens over a clone of it, so clones must share the data
    /// (like an `Arc`). Unlike [`Store::open`], creating a store here is not atomic: a store
    /// whose creation was interrupted is refused (the medium is not empty and has no magic).
    #[doc(hidden)]
    pub fn with_backend<B>(backend: B, label: &str) -> Result<Store, StoreError>
    where
        B: StorageBackend + Clone,
    {
        let shown = PathBuf::from(label);
        let db = open_backend(backend.clone(), &shown)?;
        let again = shown.clone();
        let reopen: Reopen = Box::new(move || open_backend(backend.clone(), &again));
        Store::init(db, None, shown, Some(reopen))
    }

    /// The store file, or `None` in memory (and over a custom backend).
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    fn init(
        db: Database,
        path: Option<PathBuf>,
        shown: PathBuf,
        reopen: Option<Reopen>,
    ) -> Result<Store, StoreError> {
        check_or_write_meta(&db, &shown)?;
        Ok(Store {
            inner: Arc::new(Inner {
                db: RwLock::new(Some(db)),
                reopen,
                io_failed: AtomicBool::new(false),
                path,
                shown,
                commits: AtomicU64::new(0),
            }),
        })
    }

    /// The current `Database`, reopened first if an I/O error latched the previous one.
    pub(crate) fn db(&self) -> Result<DbGuard<'_>, StoreError> {
        if self.inner.io_failed.load(Ordering::Acquire) {
            self.reopen()?;
        }
        Ok(DbGuard {
            guard: self
                .inner
                .db
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            shown: &self.inner.shown,
        })
    }

    /// Notes `error` of an operation on the current `Database`: an I/O error (which redb
    /// latches) makes the next operation reopen it.
    pub(crate) fn note(&self, error: &StoreError) {
        let source = match error {
            StoreError::Transaction { source, .. } | StoreError::Table { source, .. } => source,
            _ => return,
        };
        if matches!(
            **source,
            redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::Backend(_)
        ) && self.inner.reopen.is_some()
        {
            tracing::warn!(store = %self.inner.shown.display(), error = %error,
                "store I/O failed; reopening it on the next operation");
            self.inner.io_failed.store(true, Ordering::Release);
        }
    }

    fn reopen(&self) -> Result<(), StoreError> {
        let Some(reopen) = &self.inner.reopen else {
            return Ok(());
        };
        let mut slot = self
            .inner
            .db
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Another caller may have reopened it while this one waited for the lock.
        if !self.inner.io_failed.load(Ordering::Acquire) {
            return Ok(());
        }
        // The failed database must be closed (releasing its file lock) before the reopen.
        if let Some(failed) = slot.take() {
            let _ = catch_unwind(AssertUnwindSafe(move || drop(failed)));
        }
        let db = reopen().map_err(|e| StoreError::Reopen {
            path: self.inner.shown.clone(),
            source: Box::new(e),
        })?;
        check_or_write_meta(&db, &self.inner.shown)?;
        *slot = Some(db);
        self.inner.io_failed.store(false, Ordering::Release);
        tracing::info!(store = %self.inner.shown.display(), "store reopened after an I/O error");
        Ok(())
    }
}

/// Opens the redb file at `path` with its integrity check; a panic in redb is a damaged file.
fn open_file(path: &Path) -> Result<Database, StoreError> {
    refuse_non_redb(path)?;
    open_checked(path, |builder| builder.create(path))
}

/// Like [`open_file`], over a custom backend (`shown` names it).
fn open_backend<B: StorageBackend>(backend: B, shown: &Path) -> Result<Database, StoreError> {
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
    open_checked(shown, |builder| builder.create_with_backend(backend))
}

/// Runs `open` on a builder with the integrity check and the store's cache size; a panic in
/// redb is a damaged store named `shown`.
fn open_checked(
    shown: &Path,
    open: impl FnOnce(&mut redb::Builder) -> Result<Database, redb::DatabaseError>,
) -> Result<Database, StoreError> {
    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut builder = redb::Builder::new();
        builder
            .set_check_integrity_on_open(true)
            .set_cache_size(CACHE_BYTES);
        open(&mut builder)
    }));
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => Err(open_error(shown, e)),
        Err(panic) => Err(StoreError::Damaged {
            path: shown.to_path_buf(),
            detail: format!(
                "redb panicked while opening: {}",
                replikativ_actors::panic_message(panic.as_ref())
            ),
        }),
    }
}

/// Creates a new store file atomically: built under a temporary name and renamed into place.
/// redb writes its magic bytes last and refuses a non-empty file without them, so a process
/// killed while creating `store.redb` in place left a store that could never be opened again.
fn create_fresh(dir: &Path, path: &Path) -> Result<(), StoreError> {
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
fn refuse_non_redb(path: &Path) -> Result<(), StoreError> {
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

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
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

impl Store {
    /// Compacts the file: moves pages so the free ones at its end can be given back (redb's
    /// `compact`, repeated until it has nothing left to do). Needs the only handle on the
    /// store: no read or write may run meanwhile (`replikativ compact` on a stopped store).
    pub fn compact(&self) -> Result<(), StoreError> {
        let mut guard = self.inner.db.write().map_err(|_| StoreError::Damaged {
            path: self.inner.shown.clone(),
            detail: "a thread panicked while holding the database".into(),
        })?;
        let db = guard.as_mut().ok_or_else(|| StoreError::Damaged {
            path: self.inner.shown.clone(),
            detail: "the database is closed after an I/O error and could not be reopened".into(),
        })?;
        loop {
            match db.compact() {
                Ok(true) => continue,
                Ok(false) => return Ok(()),
                Err(e) => return Err(StoreError::txn("compacting the file", e)),
            }
        }
    }
}
