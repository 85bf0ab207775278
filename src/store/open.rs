//! [`Store`]: the handle, and opening a file (or memory) as a store.
//!
//! Opening checks, in order: the file is redb (magic bytes), redb can open it (repairing it
//! after an unclean shutdown), nobody else holds it, and its meta table says it is a
//! replikativ store of a format this build understands. A clean open reads no more of the
//! file than that (issue 16: start in constant time); every read then finds damage itself
//! (`integrity.rs`: values re-hashed, state records checksummed, redb panics caught).
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
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use redb::{
    Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, StorageBackend, TableDefinition,
    WriteTransaction,
};

use crate::store::error::StoreError;
use crate::store::files::{
    create_fresh, older, open_backend, open_checked_read_only, open_error, open_file, peek_format,
    refuse_non_redb,
};
use crate::store::meta::{check_or_write_meta, read_format};
use crate::store::packs::PackCache;

/// The store format this build reads and writes: 2 since values are packed (issue 16), 3
/// since a commit's params are found through the commit, with no index entry per value
/// (`packs.rs`), 4 since state records carry a checksum (`integrity.rs`). A store of an older
/// format is refused, naming `replikativ upgrade`, which rewrites it.
pub const FORMAT_VERSION: u32 = 4;
/// The first format whose state records are sealed with a checksum (`integrity.rs`).
pub(crate) const SEALED_SINCE: u32 = 4;
/// redb's page cache per store (redb's default is 1 GiB, which a node then holds in RSS once
/// it has read or written that much; two peers ingesting 10^6 tweets peaked at 2.4 GiB; with
/// 64 MiB at 208 MiB, with 16 MiB at 108 MiB, ingest and replication as fast: BENCHMARKS).
pub const CACHE_BYTES: usize = 16 * 1024 * 1024;
/// The file name of a store inside its directory.
pub const FILE_NAME: &str = "store.redb";

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
    db: RwLock<Option<Db>>,
    /// Opens the same storage again after an I/O error (`None`: the in-memory backend).
    reopen: Option<Reopen>,
    /// An I/O error latched the current `Database`: the next operation reopens it.
    io_failed: AtomicBool,
    /// [`Store::close`] was called: the database is gone for good, never reopened.
    closed: AtomicBool,
    /// `None` for the in-memory backend and custom backends.
    pub(crate) path: Option<PathBuf>,
    /// The file, or the label of a custom backend, for messages.
    pub(crate) shown: PathBuf,
    /// Write transactions committed through this handle (and its clones).
    pub(crate) commits: AtomicU64,
    /// The last few decoded packs.
    pub(crate) packs: PackCache,
    /// Whether state records carry checksums (this format; not a read-only older store).
    pub(crate) sealed: bool,
}

/// The database: writable, or read-only ([`Store::open_read_only`]).
enum Db {
    Rw(Database),
    Ro(ReadOnlyDatabase),
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
    guard: RwLockReadGuard<'a, Option<Db>>,
    shown: &'a Path,
    closed: bool,
}

impl DbGuard<'_> {
    fn db(&self) -> Result<&Db, StoreError> {
        self.guard.as_ref().ok_or_else(|| match self.closed {
            true => StoreError::Closed {
                path: self.shown.to_path_buf(),
            },
            false => StoreError::Damaged {
                path: self.shown.to_path_buf(),
                detail: "the database is closed after an I/O error and could not be reopened"
                    .into(),
            },
        })
    }

    pub(crate) fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        match self.db()? {
            Db::Rw(db) => db
                .begin_write()
                .map_err(|e| StoreError::txn("beginning a write", e)),
            Db::Ro(_) => Err(StoreError::ReadOnly {
                path: self.shown.to_path_buf(),
            }),
        }
    }

    pub(crate) fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        match self.db()? {
            Db::Rw(db) => db.begin_read(),
            Db::Ro(db) => db.begin_read(),
        }
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
        // An older store is refused before redb opens it for writing (which, with its
        // integrity check, writes to the file): `upgrade` finds it as it was.
        if let Some(found) = peek_format(&path)
            && found < FORMAT_VERSION
        {
            return Err(older(&path, found));
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
    /// [`Store::open`]: redb's magic bytes, redb's open (and repair), the meta table and format.
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

    /// Opens the store in `dir` read-only, without writing to its file: of this format or an
    /// older one (what `replikativ upgrade` reads; tables an older format lacks read as
    /// empty; state records of a format before 3 carry no checksum). Writes fail with
    /// [`StoreError::ReadOnly`]. Every value is re-hashed when read. A store that was not
    /// shut down cleanly needs redb's repair (a write) first: that is an error here.
    pub fn open_read_only(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(FILE_NAME);
        if !path.is_file() {
            return Err(StoreError::NotAStore {
                path,
                reason: "there is no such file".into(),
            });
        }
        refuse_non_redb(&path)?;
        let db = open_checked_read_only(&path)?;
        let format = crate::store::integrity::guarded(&path, "reading the format", || {
            read_format(&db, &path)
        });
        match format? {
            None => Err(StoreError::NotAStore {
                path,
                reason: "an empty redb database".into(),
            }),
            Some(found) if found > FORMAT_VERSION => Err(StoreError::NewerFormat {
                path,
                found,
                supported: FORMAT_VERSION,
            }),
            Some(found) => {
                let mut store = Store::wrap(Db::Ro(db), Some(path.clone()), path, None);
                if let Some(inner) = Arc::get_mut(&mut store.inner) {
                    inner.sealed = found >= SEALED_SINCE;
                }
                Ok(store)
            }
        }
    }

    fn init(
        db: Database,
        path: Option<PathBuf>,
        shown: PathBuf,
        reopen: Option<Reopen>,
    ) -> Result<Store, StoreError> {
        crate::store::integrity::guarded(&shown, "reading the format", || {
            check_or_write_meta(&db, &shown)
        })?;
        Ok(Store::wrap(Db::Rw(db), path, shown, reopen))
    }

    fn wrap(db: Db, path: Option<PathBuf>, shown: PathBuf, reopen: Option<Reopen>) -> Store {
        Store {
            inner: Arc::new(Inner {
                db: RwLock::new(Some(db)),
                reopen,
                io_failed: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                path,
                shown,
                commits: AtomicU64::new(0),
                packs: PackCache::default(),
                sealed: true,
            }),
        }
    }

    /// The current `Database`, reopened first if an I/O error latched the previous one.
    pub(crate) fn db(&self) -> Result<DbGuard<'_>, StoreError> {
        let closed = self.inner.closed.load(Ordering::Acquire);
        if self.inner.io_failed.load(Ordering::Acquire) && !closed {
            self.reopen()?;
        }
        Ok(DbGuard {
            guard: self
                .inner
                .db
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            shown: &self.inner.shown,
            closed,
        })
    }

    /// Closes the database now, on this thread, once the operations running through it end
    /// (redb then marks the file cleanly closed); every later operation through any clone of
    /// this handle fails with [`StoreError::Closed`]. A node does this when it shuts down, so
    /// a process that exits right after leaves its store clean whichever thread held the last
    /// handle (else the next open repairs the whole file first).
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let mut slot = self
            .inner
            .db
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(db) = slot.take() {
            // redb writes its clean header on drop; a panic there (a damaged file) is not ours
            // to propagate at shutdown: the next open repairs the file.
            if catch_unwind(AssertUnwindSafe(move || drop(db))).is_err() {
                tracing::warn!(store = %self.inner.shown.display(), "closing the store panicked; the next open repairs it");
            }
        }
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
        // Another caller may have reopened it while this one waited for the lock (or closed
        // it for good).
        if !self.inner.io_failed.load(Ordering::Acquire)
            || self.inner.closed.load(Ordering::Acquire)
        {
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
        *slot = Some(Db::Rw(db));
        self.inner.io_failed.store(false, Ordering::Release);
        tracing::info!(store = %self.inner.shown.display(), "store reopened after an I/O error");
        Ok(())
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
        let db = match guard.as_mut() {
            Some(Db::Rw(db)) => db,
            Some(Db::Ro(_)) => {
                return Err(StoreError::Damaged {
                    path: self.inner.shown.clone(),
                    detail: "opened read-only: compaction needs a writable store".into(),
                });
            }
            None => {
                return Err(StoreError::Damaged {
                    path: self.inner.shown.clone(),
                    detail: "the database is closed after an I/O error and could not be reopened"
                        .into(),
                });
            }
        };
        crate::store::integrity::guarded(&self.inner.shown, "compacting the file", || {
            loop {
                match db.compact() {
                    Ok(true) => continue,
                    Ok(false) => return Ok(()),
                    Err(e) => return Err(StoreError::txn("compacting the file", e)),
                }
            }
        })
    }
}
