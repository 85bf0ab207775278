//! Packs in the store (format 2, issue 16): the values a batch writes together (a commit's
//! params) are stored as one [`crate::pack`], compressed together, with an index from each
//! value's id to its place; commit records and lone values stay loose in `values`.
//!
//! | table | key | value |
//! |---|---|---|
//! | `packs` | 32-byte pack id, BLAKE3 of the pack bytes | the pack bytes |
//! | `packed` | 32-byte value id | pack id (32 bytes), index in the pack (u32 big-endian) |
//!
//! A value's id stays BLAKE3 of its uncompressed bytes: every read re-hashes the pack bytes
//! before decoding them and the value after, so damage is an error naming the pack or value.
//! Readers keep the last [`PACK_CACHE`] decoded packs (content-addressed: never stale), so
//! reading a commit's params decompresses their pack once.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, TableError,
    WriteTransaction,
};

use crate::id::Id;
use crate::pack::{self, Unpacked};
use crate::store::batch::WriteBatch;
use crate::store::error::StoreError;
use crate::store::open::{Store, VALUES};
use crate::store::read::get_addressed;

/// Packs by pack id.
pub(crate) const PACKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("packs");
/// Where each packed value is: value id → pack id and index.
pub(crate) const PACKED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("packed");

/// A batch's new values are packed when there are at least this many of them (fewer stay
/// loose: a pack of one saves nothing and costs an index entry).
pub const MIN_PACK_VALUES: usize = 2;
/// At most this many bytes of values go into one pack (a larger batch makes several, in the
/// order its values were added); readers refuse a pack declaring more. Bounds the memory of a
/// decoded pack, and so of the cache: a commit of 1,000 tweets is about 2.6 MB.
pub const MAX_PACK_BYTES: usize = 4 << 20;
/// Decoded packs each store keeps.
pub const PACK_CACHE: usize = 4;

type ReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;
type WriteTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

/// The last few decoded packs, most recent first.
#[derive(Default)]
pub(crate) struct PackCache {
    entries: Mutex<VecDeque<(Id, Arc<Unpacked>)>>,
    /// Packs read from the file and decoded (cache misses), for tests.
    decoded: AtomicU64,
}

impl PackCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Id, Arc<Unpacked>)>> {
        // Entries are whole values: a poisoned lock leaves nothing half-written.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &Id) -> Option<Arc<Unpacked>> {
        let mut entries = self.lock();
        let at = entries.iter().position(|(k, _)| k == id)?;
        let entry = entries.remove(at)?;
        let found = entry.1.clone();
        entries.push_front(entry);
        Some(found)
    }

    fn put(&self, id: Id, unpacked: Arc<Unpacked>) {
        let mut entries = self.lock();
        if entries.iter().any(|(k, _)| *k == id) {
            return;
        }
        entries.push_front((id, unpacked));
        entries.truncate(PACK_CACHE);
    }
}

/// A pack's location record: pack id and index.
fn location(pack: &Id, index: usize) -> [u8; 36] {
    let mut loc = [0u8; 36];
    loc[..32].copy_from_slice(pack.as_bytes());
    loc[32..].copy_from_slice(&(index as u32).to_be_bytes());
    loc
}

/// Parses a location record of value `id`.
pub(crate) fn parse_location(id: &Id, raw: &[u8]) -> Result<(Id, usize), StoreError> {
    match raw.split_first_chunk::<32>() {
        Some((pack, index)) if index.len() == 4 => {
            let index = u32::from_be_bytes(index.try_into().unwrap_or_default());
            Ok((Id(*pack), index as usize))
        }
        _ => Err(StoreError::Malformed {
            table: "packed",
            key: id.to_hex(),
            detail: format!("a location of {} bytes, not 36", raw.len()),
        }),
    }
}

/// Checks pack `id`'s bytes against its id, then decodes them.
pub(crate) fn read_pack(id: &Id, bytes: &[u8]) -> Result<Unpacked, StoreError> {
    let actual = Id::of(bytes);
    if actual != *id {
        return Err(StoreError::HashMismatch {
            table: "packs",
            id: *id,
            actual,
        });
    }
    pack::decode_joined(bytes, MAX_PACK_BYTES).map_err(|e| StoreError::Malformed {
        table: "packs",
        key: id.to_hex(),
        detail: e.to_string(),
    })
}

/// Opens a table a format-1 store (read for `upgrade`) does not have: `None` then.
pub(crate) fn open_optional(
    txn: &ReadTransaction,
    name: &'static str,
    def: TableDefinition<&'static [u8], &'static [u8]>,
) -> Result<Option<ReadTable>, StoreError> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(StoreError::table(name, "*", e)),
    }
}

/// Reads values, loose or packed, in one read snapshot.
pub(crate) struct ValueReader<'s> {
    store: &'s Store,
    values: ReadTable,
    packed: Option<ReadTable>,
    packs: Option<ReadTable>,
}

impl<'s> ValueReader<'s> {
    /// The value tables of `txn`.
    pub(crate) fn open(store: &'s Store, txn: &ReadTransaction) -> Result<Self, StoreError> {
        Ok(ValueReader {
            store,
            values: Store::open_read(txn, "values", VALUES)?,
            packed: open_optional(txn, "packed", PACKED)?,
            packs: open_optional(txn, "packs", PACKS)?,
        })
    }

    /// The bytes of value `id`, checked against it.
    pub(crate) fn get(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(bytes) = get_addressed(&self.values, "values", id)? {
            return Ok(Some(bytes));
        }
        self.get_packed(id)
    }

    /// The bytes of value `id` if it is packed, checked against it.
    pub(crate) fn get_packed(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((pack_id, index)) = self.locate(id)? else {
            return Ok(None);
        };
        let unpacked = self.unpack(&pack_id, id)?;
        let bytes = unpacked.get(index).ok_or_else(|| StoreError::Malformed {
            table: "packed",
            key: id.to_hex(),
            detail: format!(
                "index {index} is beyond the {} values of pack {pack_id}",
                unpacked.len()
            ),
        })?;
        let actual = Id::of(bytes);
        if actual != *id {
            return Err(StoreError::HashMismatch {
                table: "packed",
                id: *id,
                actual,
            });
        }
        Ok(Some(bytes.to_vec()))
    }

    /// Whether value `id` is stored (without reading or checking it).
    pub(crate) fn has(&self, id: &Id) -> Result<bool, StoreError> {
        let key = &id.as_bytes()[..];
        let loose = self
            .values
            .get(key)
            .map_err(|e| StoreError::table("values", id.to_hex(), e))?;
        Ok(loose.is_some() || self.locate(id)?.is_some())
    }

    fn locate(&self, id: &Id) -> Result<Option<(Id, usize)>, StoreError> {
        let Some(packed) = &self.packed else {
            return Ok(None);
        };
        let found = packed
            .get(&id.as_bytes()[..])
            .map_err(|e| StoreError::table("packed", id.to_hex(), e))?;
        found.map(|g| parse_location(id, g.value())).transpose()
    }

    fn unpack(&self, pack_id: &Id, value: &Id) -> Result<Arc<Unpacked>, StoreError> {
        if let Some(hit) = self.store.inner.packs.get(pack_id) {
            return Ok(hit);
        }
        let missing = || StoreError::Malformed {
            table: "packed",
            key: value.to_hex(),
            detail: format!("its pack {pack_id} is missing"),
        };
        let packs = self.packs.as_ref().ok_or_else(missing)?;
        let bytes = packs
            .get(&pack_id.as_bytes()[..])
            .map_err(|e| StoreError::table("packs", pack_id.to_hex(), e))?
            .ok_or_else(missing)?;
        let unpacked = Arc::new(read_pack(pack_id, bytes.value())?);
        self.store
            .inner
            .packs
            .decoded
            .fetch_add(1, Ordering::Relaxed);
        self.store.inner.packs.put(*pack_id, unpacked.clone());
        Ok(unpacked)
    }
}

/// The value tables of a write transaction.
pub(crate) struct ValueWriter<'t> {
    values: WriteTable<'t>,
    packed: WriteTable<'t>,
    packs: WriteTable<'t>,
}

impl<'t> ValueWriter<'t> {
    pub(crate) fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        let open = |name, def| {
            txn.open_table(def)
                .map_err(|e| StoreError::table(name, "*", e))
        };
        Ok(ValueWriter {
            values: open("values", VALUES)?,
            packed: open("packed", PACKED)?,
            packs: open("packs", PACKS)?,
        })
    }

    fn present(&self, id: &Id) -> Result<bool, StoreError> {
        let key = &id.as_bytes()[..];
        let loose = self
            .values
            .get(key)
            .map_err(|e| StoreError::table("values", id.to_hex(), e))?
            .is_some();
        Ok(loose
            || self
                .packed
                .get(key)
                .map_err(|e| StoreError::table("packed", id.to_hex(), e))?
                .is_some())
    }

    /// Writes the values of `batch` not yet stored: its records loose, the rest in packs of
    /// at most [`MAX_PACK_BYTES`], in the order they were added.
    pub(crate) fn write(&mut self, store: &Store, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut pending: Vec<(Id, &[u8])> = Vec::with_capacity(batch.order.len());
        for id in &batch.order {
            let Some(bytes) = batch.values.get(id) else {
                continue;
            };
            if self.present(id)? {
                continue;
            }
            if batch.loose.contains(id) {
                self.loose(id, bytes)?;
            } else {
                pending.push((*id, bytes));
            }
        }
        let (mut start, mut bytes) = (0, 0);
        for i in 0..pending.len() {
            let len = pending[i].1.len();
            if i > start && bytes + len > MAX_PACK_BYTES {
                self.group(store, &pending[start..i])?;
                (start, bytes) = (i, 0);
            }
            bytes += len;
        }
        self.group(store, &pending[start..])
    }

    fn loose(&mut self, id: &Id, bytes: &[u8]) -> Result<(), StoreError> {
        self.values
            .insert(&id.as_bytes()[..], bytes)
            .map(drop)
            .map_err(|e| StoreError::table("values", id.to_hex(), e))
    }

    /// Stores `group` as one pack, or loose when it is too small (or one value too large).
    fn group(&mut self, store: &Store, group: &[(Id, &[u8])]) -> Result<(), StoreError> {
        let total: usize = group.iter().map(|(_, v)| v.len()).sum();
        if group.len() < MIN_PACK_VALUES || total > MAX_PACK_BYTES {
            return group.iter().try_for_each(|(id, v)| self.loose(id, v));
        }
        let values: Vec<&[u8]> = group.iter().map(|(_, v)| *v).collect();
        let bytes = pack::encode(&values);
        let pack_id = Id::of(&bytes);
        debug_assert_eq!(
            pack::decode(&bytes, MAX_PACK_BYTES).ok().as_deref(),
            Some(&group.iter().map(|(_, v)| v.to_vec()).collect::<Vec<_>>()[..]),
            "a pack decodes to what was packed"
        );
        let key = &pack_id.as_bytes()[..];
        let fail = |e: redb::StorageError| StoreError::table("packs", pack_id.to_hex(), e);
        if self.packs.get(key).map_err(fail)?.is_none() {
            self.packs.insert(key, &bytes[..]).map_err(fail)?;
        }
        for (i, (id, _)) in group.iter().enumerate() {
            self.packed
                .insert(&id.as_bytes()[..], &location(&pack_id, i)[..])
                .map_err(|e| StoreError::table("packed", id.to_hex(), e))?;
        }
        // A commit just written is read next (by its sender and realizers): keep it decoded.
        // Keyed by content, an entry of a transaction that then fails is never looked up.
        store
            .inner
            .packs
            .put(pack_id, Arc::new(Unpacked::from_values(&values)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{CrdtKey, Transaction};
    use crate::store::cdvcs;

    /// Reading a commit's params decodes their pack once; the cache keeps [`PACK_CACHE`].
    #[test]
    fn a_commits_params_decode_once_and_the_cache_stays_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = CrdtKey::new("u", uuid::Uuid::from_u128(11));
        let mut commits = Vec::new();
        {
            let store = Store::open(dir.path()).expect("open");
            let (mut state, batch) = cdvcs::create(&key);
            store.write(&batch).expect("write");
            for c in 0..6u32 {
                let mut batch = WriteBatch::new();
                let txs = (0..50u32)
                    .map(|i| Transaction {
                        op: "note".into(),
                        params: batch.put_value(format!("commit {c} value {i}").into_bytes()),
                    })
                    .collect();
                let (commit, op) = state.prepare_commit("a", 1, txs).expect("commit");
                batch.merge(cdvcs::commits_batch(
                    &key,
                    std::slice::from_ref(&commit),
                    &op.heads,
                ));
                store.write(&batch).expect("write");
                state.downstream(&op).expect("apply");
                commits.push(commit.id);
            }
        }
        let store = Store::open(dir.path()).expect("reopen");
        let decoded = || store.inner.packs.decoded.load(Ordering::Relaxed);
        let load = |id: &Id| {
            let c = cdvcs::load_commit(&store, id)
                .expect("read")
                .expect("stored");
            assert!(c.params.iter().all(|(_, v)| v.is_some()));
            c.params.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
        };
        assert_eq!(decoded(), 0);
        let params = load(&commits[0]);
        assert_eq!(decoded(), 1, "fifty params, one pack decoded");
        load(&commits[0]);
        store.get_values(&params).expect("read");
        assert_eq!(decoded(), 1, "read again from the cache");
        for id in &commits[1..=PACK_CACHE] {
            load(id);
        }
        assert_eq!(decoded(), 1 + PACK_CACHE as u64);
        load(&commits[PACK_CACHE]);
        assert_eq!(decoded(), 1 + PACK_CACHE as u64, "the latest stays");
        load(&commits[0]);
        assert_eq!(decoded(), 2 + PACK_CACHE as u64, "the oldest was evicted");
    }
}
