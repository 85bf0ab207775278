//! Packs in the store (issue 16): the values a batch writes together (a commit's params) are
//! stored as one [`crate::pack`], compressed together; commit records and lone values stay
//! loose in `values`.
//!
//! | table | key | value |
//! |---|---|---|
//! | `packs` | 32-byte pack id, BLAKE3 of the pack bytes | the pack bytes |
//! | `pack_ids` | pack id | the ids of its values, 32 bytes each, in pack order |
//! | `commit_packs` | 32-byte commit id | the ids of the packs holding its params, 32 bytes each |
//! | `packed` | 32-byte value id | pack id (32 bytes), index in the pack (u32 big-endian) |
//!
//! # Finding a value (format 3)
//!
//! A commit's params are found through the commit: `commit_packs` names the packs written
//! with it, `pack_ids` says where in each pack every value is. Writing a commit of 1,000
//! params so costs one record per pack and one per commit, not 1,000 entries at random
//! places of a per-value B-tree (which format 2 wrote: the pages each commit dirtied there
//! were most of its bytes written, see `/work/notes/bench-packs.md` of issue 16). Params
//! are not looked up before they are written: a param already stored (by another commit)
//! is stored again in the new commit's pack, which costs space, never correctness (same id,
//! same bytes). Values written by a batch without a commit naming them keep an entry each
//! in `packed`, and are written once (an id already stored is left alone).
//!
//! A lookup by id alone ([`ValueReader::get`]) tries `values`, then `packed`, then the
//! `pack_ids` of every pack: that last step reads every pack's ids, so it is for tools,
//! tests and rare checks; the read paths of nodes (senders, realizers, op logs) go through
//! the commit ([`ValueReader::params`]).
//!
//! A value's id stays BLAKE3 of its uncompressed bytes: every read re-hashes the pack bytes
//! before decoding them and the value after, so damage is an error naming the pack or value.
//! Readers keep the last [`PACK_CACHE`] decoded packs (content-addressed: never stale), so
//! reading a commit's params decompresses their pack once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::{
    ReadOnlyTable, ReadTransaction, ReadableTable, Table, TableDefinition, TableError,
    WriteTransaction,
};

use crate::id::Id;
use crate::pack::{self, Unpacked, VerifiedPack};
use crate::store::batch::WriteBatch;
use crate::store::error::StoreError;
use crate::store::open::{Store, VALUES};
use crate::store::read::get_addressed;

/// Packs by pack id.
pub(crate) const PACKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("packs");
/// Where each packed value of a batch without commits is: value id → pack id and index.
pub(crate) const PACKED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("packed");
/// The value ids of each pack, in pack order: pack id → 32 bytes per value.
pub(crate) const PACK_IDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pack_ids");
/// The packs holding each commit's params: commit id → 32 bytes per pack.
pub(crate) const COMMIT_PACKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("commit_packs");

/// A batch's new values are packed when there are at least this many of them (fewer stay
/// loose: a pack of one saves nothing and costs an index entry).
pub const MIN_PACK_VALUES: usize = 2;
/// At most this many bytes of values go into one pack (a larger batch makes several, in the
/// order its values were added); readers refuse a pack declaring more
/// ([`pack::MAX_PACK_BYTES`], which peers apply to received packs too).
pub const MAX_PACK_BYTES: usize = pack::MAX_PACK_BYTES;
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

/// Splits a record of concatenated 32-byte ids (`pack_ids`, `commit_packs`).
pub(crate) fn parse_ids(table: &'static str, key: &Id, raw: &[u8]) -> Result<Vec<Id>, StoreError> {
    let (chunks, rest) = raw.as_chunks::<32>();
    if !rest.is_empty() {
        return Err(StoreError::Malformed {
            table,
            key: key.to_hex(),
            detail: format!("{} bytes, not a whole number of 32-byte ids", raw.len()),
        });
    }
    Ok(chunks.iter().map(|c| Id(*c)).collect())
}

fn join_ids<'a>(ids: impl IntoIterator<Item = &'a Id>) -> Vec<u8> {
    ids.into_iter().flat_map(|id| id.0).collect()
}

/// Reads values, loose or packed, in one read snapshot.
pub(crate) struct ValueReader<'s> {
    store: &'s Store,
    values: ReadTable,
    packed: Option<ReadTable>,
    packs: Option<ReadTable>,
    pack_ids: Option<ReadTable>,
    commit_packs: Option<ReadTable>,
}

impl<'s> ValueReader<'s> {
    /// The value tables of `txn`.
    pub(crate) fn open(store: &'s Store, txn: &ReadTransaction) -> Result<Self, StoreError> {
        Ok(ValueReader {
            store,
            values: Store::open_read(txn, "values", VALUES)?,
            packed: open_optional(txn, "packed", PACKED)?,
            packs: open_optional(txn, "packs", PACKS)?,
            pack_ids: open_optional(txn, "pack_ids", PACK_IDS)?,
            commit_packs: open_optional(txn, "commit_packs", COMMIT_PACKS)?,
        })
    }

    /// The bytes of value `id`, checked against it: loose, indexed, or else searched for in
    /// every pack's ids (slow on a large store: see the module doc).
    pub(crate) fn get(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(bytes) = get_addressed(&self.values, "values", id)? {
            return Ok(Some(bytes));
        }
        if let Some(bytes) = self.get_packed(id)? {
            return Ok(Some(bytes));
        }
        match self.search(id)? {
            Some((pack, index)) => self.value_at(&pack, index, id).map(Some),
            None => Ok(None),
        }
    }

    /// The params `ids` of commit `commit` (same order), each checked against its id: found
    /// through the packs the commit was written with, else as [`get`](Self::get) finds them.
    pub(crate) fn params(
        &self,
        commit: &Id,
        ids: &[Id],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let located = self.locate_params(commit)?;
        ids.iter()
            .map(|id| match located.get(id) {
                Some((pack, index)) => self.value_at(pack, *index, id).map(Some),
                None => self.get(id),
            })
            .collect()
    }

    /// Where the values of the packs written with `commit` are, by id.
    fn locate_params(&self, commit: &Id) -> Result<HashMap<Id, (Id, usize)>, StoreError> {
        let mut located = HashMap::new();
        for (pack, ids) in self.commit_packs_of(commit)? {
            for (i, id) in ids.into_iter().enumerate() {
                located.entry(id).or_insert((pack, i));
            }
        }
        Ok(located)
    }

    /// The packs written with `commit` and their value ids (none for a store of format 2,
    /// or a commit whose params are loose).
    fn commit_packs_of(&self, commit: &Id) -> Result<Vec<(Id, Vec<Id>)>, StoreError> {
        let Some(table) = &self.commit_packs else {
            return Ok(Vec::new());
        };
        let Some(raw) = table
            .get(&commit.as_bytes()[..])
            .map_err(|e| StoreError::table("commit_packs", commit.to_hex(), e))?
        else {
            return Ok(Vec::new());
        };
        parse_ids("commit_packs", commit, raw.value())?
            .into_iter()
            .map(|pack| Ok((pack, self.ids_of(&pack)?)))
            .collect()
    }

    /// The bytes of pack `pack` (named by commit `commit`), checked against its id.
    fn pack_bytes(&self, pack: &Id, commit: &Id) -> Result<Vec<u8>, StoreError> {
        let missing = || StoreError::Malformed {
            table: "commit_packs",
            key: commit.to_hex(),
            detail: format!("its pack {pack} is missing"),
        };
        let packs = self.packs.as_ref().ok_or_else(missing)?;
        let bytes = packs
            .get(&pack.as_bytes()[..])
            .map_err(|e| StoreError::table("packs", pack.to_hex(), e))?
            .ok_or_else(missing)?;
        let actual = Id::of(bytes.value());
        if actual != *pack {
            return Err(StoreError::HashMismatch {
                table: "packs",
                id: *pack,
                actual,
            });
        }
        Ok(bytes.value().to_vec())
    }

    /// The ids of pack `pack`'s values, in pack order (an error when it has no record).
    fn ids_of(&self, pack: &Id) -> Result<Vec<Id>, StoreError> {
        let missing = || StoreError::Malformed {
            table: "pack_ids",
            key: pack.to_hex(),
            detail: "the pack has no ids record".into(),
        };
        let table = self.pack_ids.as_ref().ok_or_else(missing)?;
        let raw = table
            .get(&pack.as_bytes()[..])
            .map_err(|e| StoreError::table("pack_ids", pack.to_hex(), e))?
            .ok_or_else(missing)?;
        parse_ids("pack_ids", pack, raw.value())
    }

    /// The pack and place of `id` among every pack's ids, if any.
    fn search(&self, id: &Id) -> Result<Option<(Id, usize)>, StoreError> {
        let Some(table) = &self.pack_ids else {
            return Ok(None);
        };
        find_in_pack_ids(table, id)
    }

    /// The bytes of value `id` if it has an index entry, checked against it.
    pub(crate) fn get_packed(&self, id: &Id) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((pack_id, index)) = self.locate(id)? else {
            return Ok(None);
        };
        self.value_at(&pack_id, index, id).map(Some)
    }

    /// Value `index` of pack `pack_id`, which must hash to `id`.
    fn value_at(&self, pack_id: &Id, index: usize, id: &Id) -> Result<Vec<u8>, StoreError> {
        let unpacked = self.unpack(pack_id, id)?;
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
        Ok(bytes.to_vec())
    }

    /// Whether value `id` is stored (without reading or checking it; searching every pack's
    /// ids when it is neither loose nor indexed).
    pub(crate) fn has(&self, id: &Id) -> Result<bool, StoreError> {
        let key = &id.as_bytes()[..];
        let loose = self
            .values
            .get(key)
            .map_err(|e| StoreError::table("values", id.to_hex(), e))?;
        Ok(loose.is_some() || self.locate(id)?.is_some() || self.search(id)?.is_some())
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

/// A commit's params as stored, for sending: the packs written with it, as their bytes (not
/// decompressed), and its other params one by one.
#[derive(Debug, Default)]
pub struct ParamsAsStored {
    /// The packs holding some of the params, each checked against its id.
    pub packs: Vec<VerifiedPack>,
    /// The params in none of them, `(id, bytes)`, re-hashed (loose ones, mostly).
    pub values: Vec<(Id, Vec<u8>)>,
    /// Params not stored at all.
    pub missing: Vec<Id>,
}

impl Store {
    /// The params `ids` of commit `commit` as stored (see [`ParamsAsStored`]), from one
    /// read snapshot. A pack is checked against its id (BLAKE3 of its compressed bytes), not
    /// decompressed: whoever decodes it (a peer) hashes every value.
    pub fn params_as_stored(&self, commit: &Id, ids: &[Id]) -> Result<ParamsAsStored, StoreError> {
        let txn = self.read_txn()?;
        let reader = ValueReader::open(self, &txn)?;
        let mut out = ParamsAsStored::default();
        let mut found: HashSet<Id> = HashSet::new();
        for (pack, pack_ids) in reader.commit_packs_of(commit)? {
            if !ids.iter().any(|id| pack_ids.contains(id)) {
                continue;
            }
            let bytes = reader.pack_bytes(&pack, commit)?;
            found.extend(pack_ids.iter().copied());
            out.packs.push(VerifiedPack::trusted(pack, bytes, pack_ids));
        }
        for id in ids {
            if found.contains(id) {
                continue;
            }
            match reader.get(id)? {
                Some(bytes) => {
                    found.insert(*id);
                    out.values.push((*id, bytes));
                }
                None => out.missing.push(*id),
            }
        }
        Ok(out)
    }
}

/// The pack and place of `id` in a `pack_ids` table: a scan of every record.
fn find_in_pack_ids(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &Id,
) -> Result<Option<(Id, usize)>, StoreError> {
    let range = table
        .range::<&[u8]>(..)
        .map_err(|e| StoreError::table("pack_ids", "*", e))?;
    for item in range {
        let (k, v) = item.map_err(|e| StoreError::table("pack_ids", "*", e))?;
        let (chunks, _) = v.value().as_chunks::<32>();
        if let Some(i) = chunks.iter().position(|c| c == id.as_bytes())
            && let Ok(pack) = <[u8; 32]>::try_from(k.value())
        {
            return Ok(Some((Id(pack), i)));
        }
    }
    Ok(None)
}

mod writer;
pub(crate) use writer::ValueWriter;

#[cfg(test)]
mod tests;
