//! Writes: one or more batches in one durable redb transaction, all or nothing.

use std::sync::atomic::Ordering;

use redb::{Durability, ReadableTable, Table, WriteTransaction};

use crate::store::batch::{StateOp, WriteBatch};
use crate::store::error::{StoreError, show_key};
use crate::store::open::{BLOBS, STATE, Store, VALUES};

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
        let result = self.commit_group(batches);
        if let Err(e) = &result {
            self.note(e);
        }
        result
    }

    fn commit_group(&self, batches: &[&WriteBatch]) -> Result<(), StoreError> {
        let db = self.db()?;
        let mut txn = db.begin_write()?;
        let durability = if self.inner.no_fsync.load(Ordering::Relaxed) {
            Durability::None
        } else {
            Durability::Immediate
        };
        txn.set_durability(durability)
            .map_err(|e| StoreError::txn("setting the durability of a write", e))?;
        apply(&txn, batches)?;
        if let Some(remaining) = self.take_injected_failure() {
            // Dropping the transaction aborts it: nothing of the group becomes visible.
            txn.abort()
                .map_err(|e| StoreError::txn("aborting an injected failure", e))?;
            return Err(StoreError::Injected { remaining });
        }
        let _gate = self
            .inner
            .write_gate
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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

    /// Holds every write at its commit point (inside its open transaction) until the returned
    /// guard is dropped: a slow disk on demand, for tests of what must not wait for writes.
    pub fn hold_writes(&self) -> WriteHold<'_> {
        WriteHold {
            _guard: self
                .inner
                .write_gate
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Makes the next `n` write transactions fail with [`StoreError::Injected`] after doing
    /// their work but before committing (so they write nothing). For fault-injection tests.
    pub fn inject_write_failures(&self, n: u64) {
        self.inner.injected_failures.store(n, Ordering::SeqCst);
    }

    fn take_injected_failure(&self) -> Option<u64> {
        let faults = &self.inner.injected_failures;
        if faults.load(Ordering::Relaxed) == 0 {
            return None;
        }
        faults
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .ok()
            .map(|before| before - 1)
    }
}

/// Writes wait at their commit point while this lives ([`Store::hold_writes`]).
#[must_use = "writes resume as soon as the hold is dropped"]
pub struct WriteHold<'a> {
    _guard: std::sync::RwLockWriteGuard<'a, ()>,
}

impl std::fmt::Debug for WriteHold<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteHold")
    }
}

fn apply(txn: &WriteTransaction, batches: &[&WriteBatch]) -> Result<(), StoreError> {
    let mut values = txn
        .open_table(VALUES)
        .map_err(|e| StoreError::table("values", "*", e))?;
    let mut blobs = txn
        .open_table(BLOBS)
        .map_err(|e| StoreError::table("blobs", "*", e))?;
    let mut state = txn
        .open_table(STATE)
        .map_err(|e| StoreError::table("state", "*", e))?;
    for batch in batches {
        for (id, bytes) in &batch.values {
            insert_addressed(&mut values, "values", id, bytes)?;
        }
        for (id, bytes) in &batch.blobs {
            insert_addressed(&mut blobs, "blobs", id, bytes)?;
        }
        for (key, op) in &batch.state {
            match op {
                StateOp::Put(bytes) => state.insert(key.as_slice(), bytes.as_slice()).map(drop),
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
