//! [`StoreError`]: every way the store can fail, with the table and key it concerns.
//!
//! Sources are kept behind `Arc` so one failed group commit can hand the same error to every
//! caller whose batch it carried.

use std::path::PathBuf;
use std::sync::Arc;

use crate::id::Id;

/// A failure of the store, naming the file, table and key it concerns.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the store's file lock.
    #[error(
        "store {path} is in use by another process (a running replikativ node?); \
         connect to that node instead of opening its store, or stop it first"
    )]
    InUse {
        /// The store file.
        path: PathBuf,
    },
    /// The file exists but is not a replikativ store (not redb, or redb written by something else).
    #[error("{path} is not a replikativ store: {reason}")]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The store was written by a newer version of replikativ.
    #[error(
        "store {path} has format version {found}, this build supports up to {supported}; \
         upgrade replikativ to open it"
    )]
    NewerFormat {
        /// The store file.
        path: PathBuf,
        /// The format version recorded in the file.
        found: u32,
        /// The newest format version this build understands.
        supported: u32,
    },
    /// The store was written in an older format: `replikativ upgrade` rewrites it.
    #[error(
        "store {path} has format version {found}, this build reads format {supported}: \
         run `replikativ upgrade --store {}` (it writes the new store beside the old one \
         and keeps the old one as a backup)",
        dir.display()
    )]
    OlderFormat {
        /// The store file.
        path: PathBuf,
        /// The store directory (what `upgrade --store` takes).
        dir: PathBuf,
        /// The format version recorded in the file.
        found: u32,
        /// The format version this build reads and writes.
        supported: u32,
    },
    /// A store opened read-only that was not shut down cleanly: redb's repair needs a write.
    #[error(
        "store {path} was not shut down cleanly: redb repairs it when it is opened for \
         writing, which a read-only open does not do"
    )]
    Unclean {
        /// The store file.
        path: PathBuf,
    },
    /// A write to a store opened read-only.
    #[error("store {path} is open read-only")]
    ReadOnly {
        /// The store file.
        path: PathBuf,
    },
    /// A record the store wrote itself does not have its shape: the file is damaged.
    #[error("table `{table}` at key {key}: {detail}: the store is damaged")]
    Malformed {
        /// The table (`packs`, `packed`).
        table: &'static str,
        /// The key, printable (hex id).
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// A state record's checksum does not match its bytes: the file is damaged there.
    #[error("the stored {record} is damaged ({detail}): the store is damaged")]
    StateDamaged {
        /// Which record, by name (e.g. `heads of CDVCS alice/…`).
        record: String,
        /// What is wrong.
        detail: String,
    },
    /// The file is damaged: its checksums or structure do not hold.
    #[error("store {path} is damaged: {detail}")]
    Damaged {
        /// The store file.
        path: PathBuf,
        /// What redb (or our own check) found.
        detail: String,
    },
    /// An I/O error outside redb (creating the directory, reading the header).
    #[error("I/O error on {path}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// redb refused to open the file for another reason.
    #[error("cannot open store {path}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// redb's error.
        #[source]
        source: Arc<redb::Error>,
    },
    /// The store could not be reopened after an I/O error closed its database (the storage
    /// still fails, e.g. the disk is still full); the next operation tries again.
    #[error("cannot reopen store {path} after an I/O error")]
    Reopen {
        /// The store file (or backend label).
        path: PathBuf,
        /// Why the reopen failed.
        #[source]
        source: Box<StoreError>,
    },
    /// A transaction could not begin or commit.
    #[error("store transaction failed while {op}")]
    Transaction {
        /// What was being done (`"beginning a read"`, `"committing a write"`, ...).
        op: &'static str,
        /// redb's error.
        #[source]
        source: Arc<redb::Error>,
    },
    /// Reading or writing one table (and key, when there is one) failed.
    #[error("store table `{table}` failed at key {key}")]
    Table {
        /// The table.
        table: &'static str,
        /// The key, printable (hex id or escaped bytes); `*` for a whole-table operation.
        key: String,
        /// redb's error.
        #[source]
        source: Arc<redb::Error>,
    },
    /// Bytes stored under a content id do not hash to it: the file is damaged.
    #[error("table `{table}`: bytes under {id} hash to {actual}: the store is damaged")]
    HashMismatch {
        /// The table (`values` or `blobs`).
        table: &'static str,
        /// The id the bytes are stored under.
        id: Id,
        /// What they hash to.
        actual: Id,
    },
    /// A caller claimed an id for bytes that hash to something else.
    #[error("claimed id {claimed} but the bytes hash to {actual}")]
    IdMismatch {
        /// The id the caller gave.
        claimed: Id,
        /// BLAKE3 of the bytes.
        actual: Id,
    },
    /// The group-commit writer thread is gone; the batch may or may not have been written.
    #[error("the store writer thread stopped before answering")]
    WriterStopped,
    /// A blocking read task panicked or was cancelled.
    #[error("the blocking store task `{op}` did not finish")]
    TaskFailed {
        /// Which read it was.
        op: &'static str,
    },
    /// The store was closed ([`crate::store::Store::close`]: its node shut down).
    #[error("store {path} is closed: the node that opened it has shut down")]
    Closed {
        /// The file.
        path: PathBuf,
    },
}

impl StoreError {
    pub(crate) fn table(
        table: &'static str,
        key: impl Into<String>,
        e: impl Into<redb::Error>,
    ) -> Self {
        StoreError::Table {
            table,
            key: key.into(),
            source: Arc::new(e.into()),
        }
    }

    pub(crate) fn txn(op: &'static str, e: impl Into<redb::Error>) -> Self {
        StoreError::Transaction {
            op,
            source: Arc::new(e.into()),
        }
    }
}

/// Printable form of a byte key: ASCII kept, everything else escaped.
pub(crate) fn show_key(key: &[u8]) -> String {
    key.escape_ascii().to_string()
}
