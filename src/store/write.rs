//! Writes: one or more batches in one durable redb transaction, all or nothing.

use std::sync::atomic::Ordering;

use redb::{Durability, ReadableTable, Table, WriteTransaction};

use crate::store::batch::{StateOp, WriteBatch};
use crate::store::error::{StoreError, show_key};
use crate::store::open::{BLOBS, STATE, Store};
use crate::store::packs::ValueWriter;

impl Store {
    /// Writes `batch` in one durable transaction (`Durability::Immediate`): when this returns
    /// `Ok`, every value, blob and state change in it is on disk. On `Err`, the batch is not
    /// acknowledged and is either wholly absent or (when the storage failed during the commit's
    /// own sync, so nobody can tell whether the commit reached the disk) wholly present after
    /// a reopen; never half of it.
    pub fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.write_group(&[batch])
    }

    /// Writes several batches in one durable transaction, applied in order (a later batch's
    /// state change to a key wins). This is the group commit the writer thread uses.
    ///
    /// An I/O error (which redb latches until the database is reopened) fails this write and
    /// makes the next read or write reopen the store first.
    pub fn write_group(&self, batches: &[&WriteBatch]) -> Result<(), StoreError> {
        if batches.iter().all(|b| b.is_empty()) {
            return Ok(());
        }
        let result = self.guard("writing", || self.commit_group(batches));
        if let Err(e) = &result {
            self.note(e);
        }
        result
    }

    fn commit_group(&self, batches: &[&WriteBatch]) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| StoreError::txn("setting the durability of a write", e))?;
        apply(self, &txn, batches)?;
        txn.commit()
            .map_err(|e| StoreError::txn("committing a write", e))?;
        self.inner.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Number of write transactions committed through this store handle and its clones: with
    /// group commit, fewer than the batches written.
    pub fn commit_count(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }
}

fn apply(store: &Store, txn: &WriteTransaction, batches: &[&WriteBatch]) -> Result<(), StoreError> {
    let mut values = ValueWriter::open(txn)?;
    let mut blobs = txn
        .open_table(BLOBS)
        .map_err(|e| StoreError::table("blobs", "*", e))?;
    let mut state = txn
        .open_table(STATE)
        .map_err(|e| StoreError::table("state", "*", e))?;
    for batch in batches {
        // Each batch its own packs: a commit's params are read together.
        values.write(store, batch)?;
        for (id, bytes) in &batch.blobs {
            insert_addressed(&mut blobs, "blobs", id, bytes)?;
        }
        for (key, op) in &batch.state {
            match op {
                StateOp::Put(bytes) => {
                    let sealed = crate::store::integrity::seal(key, bytes);
                    state.insert(key.as_slice(), sealed.as_slice()).map(drop)
                }
                StateOp::Delete => state.remove(key.as_slice()).map(drop),
            }
            .map_err(|e| StoreError::table("state", show_key(key), e))?;
        }
    }
    Ok(())
}

/// Content-addressed insert: an id already present is left alone (same id, same bytes).
fn insert_addressed(
    table: &mut Table<&'static [u8], &'static [u8]>,
    name: &'static str,
    id: &crate::id::Id,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let key = &id.as_bytes()[..];
    let present = table
        .get(key)
        .map_err(|e| StoreError::table(name, id.to_hex(), e))?
        .is_some();
    if !present {
        table
            .insert(key, bytes)
            .map_err(|e| StoreError::table(name, id.to_hex(), e))?;
    }
    Ok(())
}
