//! Reads: each runs in its own redb read transaction (a snapshot), on the caller's thread.
//!
//! Content-addressed reads re-hash what they return, so a damaged value is an error naming its
//! id, never silently wrong bytes.

use std::ops::ControlFlow;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTableMetadata, TableDefinition};

use crate::id::Id;
use crate::store::error::{StoreError, show_key};
use crate::store::open::{BLOBS, STATE, Store, VALUES};
use crate::store::packs::{PACK_IDS, PACKED, PACKS, ValueReader, open_optional, read_pack};

/// State records as `(key, value)` pairs, in key order.
pub type StateRecords = Vec<(Vec<u8>, Vec<u8>)>;

impl Store {
    pub(crate) fn read_txn(&self) -> Result<ReadTransaction, StoreError> {
        let txn = self.db()?.begin_read();
        if let Err(e) = &txn {
            self.note(e);
        }
        txn
    }

    pub(crate) fn open_read(
        txn: &ReadTransaction,
        name: &'static str,
        def: TableDefinition<&'static [u8], &'static [u8]>,
    ) -> Result<ReadOnlyTable<&'static [u8], &'static [u8]>, StoreError> {
        txn.open_table(def)
            .map_err(|e| StoreError::table(name, "*", e))
    }

    /// Runs the operation `what` so that a panic in redb (a damaged page) is an error.
    pub(crate) fn guard<T>(
        &self,
        what: &str,
        op: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        crate::store::integrity::guarded(&self.inner.shown, what, op)
    }

    /// The bytes of state record `key` as stored: its checksum checked and stripped (a store
    /// of an older format, read-only, has none).
    pub(crate) fn state_bytes<'a>(
        &self,
        key: &[u8],
        stored: &'a [u8],
    ) -> Result<&'a [u8], StoreError> {
        if self.inner.sealed {
            crate::store::integrity::unseal(key, stored)
        } else {
            Ok(stored)
        }
    }

    /// The bytes of value `id` (loose or packed), checked against their id.
    pub fn get_value(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard("reading a value", || {
            let txn = self.read_txn()?;
            ValueReader::open(self, &txn)?.get(id)
        })
    }

    /// The bytes of each value in `ids` (same order), checked against their ids, from one
    /// snapshot; a pack holding several of them is decoded once.
    pub fn get_values(&self, ids: &[Id]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.guard("reading values", || {
            let txn = self.read_txn()?;
            let reader = ValueReader::open(self, &txn)?;
            ids.iter().map(|id| reader.get(id)).collect()
        })
    }

    /// Whether value `id` is stored, loose or packed (without reading or checking it).
    pub fn has_value(&self, id: &Id) -> Result<bool, StoreError> {
        self.guard("looking up a value", || {
            let txn = self.read_txn()?;
            ValueReader::open(self, &txn)?.has(id)
        })
    }

    /// The bytes of blob `id`, checked against their id.
    pub fn get_blob(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard("reading a blob", || {
            let txn = self.read_txn()?;
            let table = Self::open_read(&txn, "blobs", BLOBS)?;
            get_addressed(&table, "blobs", id)
        })
    }

    /// The state record under `key`, its checksum checked.
    pub fn get_state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard("reading a state record", || {
            let txn = self.read_txn()?;
            let table = Self::open_read(&txn, "state", STATE)?;
            get_state_in(self, &table, key)
        })
    }

    /// Which of `keys` have a state record, from one read snapshot (one transaction for the
    /// whole set, not one per key).
    pub fn has_states(&self, keys: &[Vec<u8>]) -> Result<Vec<bool>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.guard("looking up state records", || {
            let txn = self.read_txn()?;
            let table = Self::open_read(&txn, "state", STATE)?;
            keys.iter()
                .map(|key| {
                    table
                        .get(key.as_slice())
                        .map(|found| found.is_some())
                        .map_err(|e| StoreError::table("state", show_key(key), e))
                })
                .collect()
        })
    }

    /// All state records whose key starts with `prefix`, in key order.
    pub fn scan_state(&self, prefix: &[u8]) -> Result<StateRecords, StoreError> {
        let mut out = Vec::new();
        self.visit_state(prefix, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Calls `visit` on each state record whose key starts with `prefix`, in key order, until
    /// it breaks; for scans too large to collect. A record whose checksum fails ends the scan
    /// with an error naming it.
    pub fn visit_state(
        &self,
        prefix: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.guard("scanning state records", || {
            let txn = self.read_txn()?;
            let table = Self::open_read(&txn, "state", STATE)?;
            let range = table
                .range::<&[u8]>(prefix..)
                .map_err(|e| StoreError::table("state", show_key(prefix), e))?;
            for item in range {
                let (k, v) = item.map_err(|e| StoreError::table("state", show_key(prefix), e))?;
                let key = k.value();
                if !key.starts_with(prefix) {
                    break;
                }
                if visit(key, self.state_bytes(key, v.value())?).is_break() {
                    break;
                }
            }
            Ok(())
        })
    }

    /// The first state key `>= from` that starts with `prefix`: a seek, for skip scans.
    pub fn seek_state_key(
        &self,
        from: &[u8],
        prefix: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard("seeking a state key", || {
            let txn = self.read_txn()?;
            let table = Self::open_read(&txn, "state", STATE)?;
            let mut range = table
                .range::<&[u8]>(from..)
                .map_err(|e| StoreError::table("state", show_key(from), e))?;
            match range.next() {
                Some(item) => {
                    let (k, _) = item.map_err(|e| StoreError::table("state", show_key(from), e))?;
                    let key = k.value();
                    Ok(key.starts_with(prefix).then(|| key.to_vec()))
                }
                None => Ok(None),
            }
        })
    }

    /// Calls `visit` on every stored value until it breaks: the loose ones (id and bytes,
    /// unchecked) in id order, then each pack's, pack by pack (each pack checked against its
    /// id and decoded once; a value's id is the hash of its bytes). See also [`Store::verify`].
    pub fn for_each_value(
        &self,
        mut visit: impl FnMut(Id, &[u8]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.guard("reading every value", || self.for_each_value_in(&mut visit))
    }

    fn for_each_value_in(
        &self,
        mut visit: impl FnMut(Id, &[u8]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let txn = self.read_txn()?;
        if self.for_each_loose(&txn, &mut visit)?.is_break() {
            return Ok(());
        }
        let Some(packs) = open_optional(&txn, "packs", PACKS)? else {
            return Ok(());
        };
        let range = packs
            .range::<&[u8]>(..)
            .map_err(|e| StoreError::table("packs", "*", e))?;
        for item in range {
            let (k, v) = item.map_err(|e| StoreError::table("packs", "*", e))?;
            let pack_id = self.id_key("packs", k.value())?;
            for value in read_pack(&pack_id, v.value())?.iter() {
                if visit(Id::of(value), value).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn id_key(&self, table: &str, key: &[u8]) -> Result<Id, StoreError> {
        <[u8; 32]>::try_from(key)
            .map(Id)
            .map_err(|_| StoreError::Damaged {
                path: self.shown_path(),
                detail: format!("{table} key {} is not 32 bytes", show_key(key)),
            })
    }

    fn for_each_loose(
        &self,
        txn: &ReadTransaction,
        visit: &mut impl FnMut(Id, &[u8]) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, StoreError> {
        let table = Self::open_read(txn, "values", VALUES)?;
        let range = table
            .range::<&[u8]>(..)
            .map_err(|e| StoreError::table("values", "*", e))?;
        for item in range {
            let (k, v) = item.map_err(|e| StoreError::table("values", "*", e))?;
            let id = self.id_key("values", k.value())?;
            if visit(id, v.value()).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Every blob `(id, bytes)`, checked against its id, in id order.
    pub(crate) fn all_blobs(&self) -> Result<Vec<(Id, Vec<u8>)>, StoreError> {
        self.guard("reading every blob", || self.all_blobs_in())
    }

    fn all_blobs_in(&self) -> Result<Vec<(Id, Vec<u8>)>, StoreError> {
        let txn = self.read_txn()?;
        let table = Self::open_read(&txn, "blobs", BLOBS)?;
        let range = table
            .range::<&[u8]>(..)
            .map_err(|e| StoreError::table("blobs", "*", e))?;
        let mut out = Vec::new();
        for item in range {
            let (k, _) = item.map_err(|e| StoreError::table("blobs", "*", e))?;
            let id = self.id_key("blobs", k.value())?;
            if let Some(bytes) = get_addressed(&table, "blobs", &id)? {
                out.push((id, bytes));
            }
        }
        Ok(out)
    }

    /// Number of stored values, loose and packed (a param stored again in the pack of a
    /// later commit counts again; see `packs.rs`). Reads every pack's ids record.
    pub fn value_count(&self) -> Result<u64, StoreError> {
        self.guard("counting values", || self.value_count_in())
    }

    fn value_count_in(&self) -> Result<u64, StoreError> {
        let txn = self.read_txn()?;
        let table = Self::open_read(&txn, "values", VALUES)?;
        let loose = table
            .len()
            .map_err(|e| StoreError::table("values", "*", e))?;
        let packed = match open_optional(&txn, "pack_ids", PACK_IDS)? {
            Some(t) => {
                let mut n = 0u64;
                for item in t
                    .range::<&[u8]>(..)
                    .map_err(|e| StoreError::table("pack_ids", "*", e))?
                {
                    let (_, v) = item.map_err(|e| StoreError::table("pack_ids", "*", e))?;
                    n += (v.value().len() / 32) as u64;
                }
                n
            }
            // Format 2 (read for `upgrade`): every packed value has an index entry.
            None => match open_optional(&txn, "packed", PACKED)? {
                Some(t) => t.len().map_err(|e| StoreError::table("packed", "*", e))?,
                None => 0,
            },
        };
        Ok(loose + packed)
    }

    pub(crate) fn shown_path(&self) -> std::path::PathBuf {
        self.inner.shown.clone()
    }
}

/// The state record under `key` in an open state table of `store` (another read of the same
/// snapshot), its checksum checked.
pub(crate) fn get_state_in(
    store: &Store,
    table: &ReadOnlyTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    let found = table
        .get(key)
        .map_err(|e| StoreError::table("state", show_key(key), e))?;
    match found {
        Some(g) => Ok(Some(store.state_bytes(key, g.value())?.to_vec())),
        None => Ok(None),
    }
}

pub(crate) fn get_addressed(
    table: &ReadOnlyTable<&'static [u8], &'static [u8]>,
    name: &'static str,
    id: &Id,
) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(guard) = table
        .get(&id.as_bytes()[..])
        .map_err(|e| StoreError::table(name, id.to_hex(), e))?
    else {
        return Ok(None);
    };
    let bytes = guard.value();
    let actual = Id::of(bytes);
    if actual != *id {
        return Err(StoreError::HashMismatch {
            table: name,
            id: *id,
            actual,
        });
    }
    Ok(Some(bytes.to_vec()))
}
