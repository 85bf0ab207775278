//! The store: content-addressed values, mutable state, and blobs, over redb (DESIGN §4).
//!
//! # Layout
//!
//! - [`Store`] (`open.rs`): a cheap `Clone` handle over one redb database, on disk
//!   ([`Store::open`]) or in memory ([`Store::in_memory`]); one implementation, two backends.
//!   Reads (`read.rs`) run on the caller's thread in their own snapshot.
//! - [`WriteBatch`] (`batch.rs`): values, blobs and state changes that [`Store::write`] commits
//!   in one durable transaction, or not at all (`write.rs`).
//! - [`GroupCommitter`] (`group_commit.rs`): a writer thread that coalesces every batch queued
//!   while a transaction is being written into the next transaction.
//! - [`StoreHandle`] (`handle.rs`): what writers hold: reads on their thread, writes straight
//!   to the writer thread the current store actor incarnation published (no actor hop, no
//!   supervisor round trip).
//! - [`StoreActor`] (`actor.rs`): the supervised owner of a writer thread, and the actix face
//!   of the store for code holding its address: writes go through the group committer, reads
//!   run on the blocking pool, so no arbiter ever waits on redb.
//! - [`keys`]: the byte layout of the state space; [`cdvcs`]: a CDVCS's records in it (load,
//!   create, write commits, peer-heads hints), the one persistence vocabulary;
//!   [`checkpoint`]: sources' checkpoints as typed records; [`writers`]: the writer rule's
//!   record of each commit of an owned CDVCS.
//! - [`Store::verify`] (`verify.rs`): re-hash everything, report every damaged record.
//! - `integrity.rs`: what replaces a full-file check on open: state records sealed with a
//!   checksum, redb panics on damaged pages caught as errors.
//! - [`upgrade`]: rewrite a store of format 1, 2 or 3 in format 4 beside it, verify, swap
//!   atomically.
//! - Packs (`packs.rs`, format 3): a batch's values compressed together, a commit's params
//!   found through the commit, read through a small cache of decoded packs; `files.rs`: the store file (creating, opening, refusing).
//!
//! # Tables
//!
//! | table | key | value |
//! |---|---|---|
//! | `replikativ_meta` | `kind`, `format` | `replikativ-store`, format version (u32 BE) |
//! | `values` | 32-byte id | MessagePack bytes whose BLAKE3 is the id (loose: commit records, lone values) |
//! | `packs` | 32-byte pack id | a [`crate::pack`] of the values one batch wrote; BLAKE3 of it is the id |
//! | `pack_ids` | 32-byte pack id | the ids of its values, 32 bytes each, in pack order |
//! | `commit_packs` | 32-byte commit id | the ids of the packs holding its params |
//! | `packed` | 32-byte value id | the pack id and the value's index in it (values of batches without commits) |
//! | `blobs` | 32-byte id | raw bytes whose BLAKE3 is the id |
//! | `state` | byte key ([`keys`]) | bytes, then a 4-byte checksum of key and bytes (format 3) |
//!
//! # Example
//!
//! ```
//! use replikativ::store::{Store, WriteBatch, keys};
//!
//! let store = Store::in_memory()?;
//! let mut batch = WriteBatch::new();
//! let id = batch.put_value(rmp_serde::to_vec(&"hello").expect("encode"));
//! let checkpoint = keys::source_checkpoint("tweets");
//! batch.put_state(checkpoint.clone(), b"offset 42".to_vec());
//! store.write(&batch)?;
//! assert!(store.has_value(&id)?);
//! assert_eq!(store.get_state(&checkpoint)?, Some(b"offset 42".to_vec()));
//! # Ok::<(), replikativ::store::StoreError>(())
//! ```

mod actor;
mod batch;
pub mod cdvcs;
pub mod checkpoint;
mod error;
mod files;
pub mod graph;
mod group_commit;
mod handle;
#[cfg(test)]
mod hashed_once_tests;
mod integrity;
pub mod keys;
mod meta;
mod open;
mod packs;
mod read;
pub mod upgrade;
mod verify;
mod write;
pub mod writers;

pub use actor::{GetState, GetValues, MAILBOX_CAPACITY, ScanState, StoreActor, Write};
pub use batch::WriteBatch;
pub use error::StoreError;
pub use group_commit::{GroupCommitter, MAX_GROUP_BYTES};
pub use handle::{STORE_WAIT, StoreHandle};
pub use keys::CrdtKey;
pub use open::{CACHE_BYTES, FILE_NAME, FORMAT_VERSION, Store};
pub use packs::{MAX_PACK_BYTES, MIN_PACK_VALUES, PACK_CACHE, ParamsAsStored};
pub use read::StateRecords;
pub use verify::{Damage, VerifyReport};

/// Where the store lives.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    /// A directory on disk (created if missing).
    Dir(std::path::PathBuf),
    /// redb's in-memory backend (tests).
    Memory,
    /// An already open store.
    Open(Store),
}

impl StoreLocation {
    /// Opens the store (creating it on disk when missing).
    pub fn open(&self) -> Result<Store, StoreError> {
        match self {
            StoreLocation::Dir(dir) => Store::open(dir),
            StoreLocation::Memory => Store::in_memory(),
            StoreLocation::Open(s) => Ok(s.clone()),
        }
    }
}
