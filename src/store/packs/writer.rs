//! Writing values, loose or in packs, in one write transaction (see the parent module).

use super::*;

/// The value tables of a write transaction.
pub(crate) struct ValueWriter<'t> {
    values: WriteTable<'t>,
    packed: WriteTable<'t>,
    packs: WriteTable<'t>,
    pack_ids: WriteTable<'t>,
    commit_packs: WriteTable<'t>,
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
            pack_ids: open("pack_ids", PACK_IDS)?,
            commit_packs: open("commit_packs", COMMIT_PACKS)?,
        })
    }

    fn loose_present(&self, id: &Id) -> Result<bool, StoreError> {
        Ok(self
            .values
            .get(&id.as_bytes()[..])
            .map_err(|e| StoreError::table("values", id.to_hex(), e))?
            .is_some())
    }

    fn indexed(&self, id: &Id) -> Result<bool, StoreError> {
        Ok(self
            .packed
            .get(&id.as_bytes()[..])
            .map_err(|e| StoreError::table("packed", id.to_hex(), e))?
            .is_some())
    }

    /// Writes the values of `batch`: its records loose (once), its commits' params in packs
    /// found through the commits (not looked up first), any other value not yet stored in
    /// packs with an index entry each; packs of at most [`MAX_PACK_BYTES`], in the order the
    /// values were added.
    pub(crate) fn write(&mut self, store: &Store, batch: &WriteBatch) -> Result<(), StoreError> {
        let params: HashSet<&Id> = batch.commits.iter().flat_map(|(_, p)| p).collect();
        let mut of_commits: Vec<(Id, &[u8])> = Vec::new();
        let mut others: Vec<(Id, &[u8])> = Vec::new();
        for id in &batch.order {
            let Some(bytes) = batch.values.get(id) else {
                continue;
            };
            if batch.loose.contains(id) {
                if !self.loose_present(id)? {
                    self.loose(id, bytes)?;
                }
            } else if params.contains(id) {
                of_commits.push((*id, bytes));
            } else if !self.loose_present(id)? && !self.indexed(id)? {
                others.push((*id, bytes));
            }
        }
        let mut written: HashMap<Id, Id> = HashMap::new();
        for received in &batch.packs {
            self.put_pack(&received.id(), received.bytes(), received.ids())?;
            for id in received.ids() {
                written.entry(*id).or_insert(received.id());
            }
        }
        for group in split(&of_commits) {
            if let Some(pack) = self.group(store, group, false)? {
                written.extend(group.iter().map(|(id, _)| (*id, pack)));
            }
        }
        for group in split(&others) {
            self.group(store, group, true)?;
        }
        for (commit, params) in &batch.commits {
            let mut packs: Vec<Id> = Vec::new();
            for p in params {
                let pack = match written.get(p) {
                    Some(pack) => Some(*pack),
                    // Not in this batch: loose or indexed needs nothing here; in a pack of
                    // another commit (rare: a peer that did not send it again), that pack.
                    None if self.loose_present(p)? || self.indexed(p)? => None,
                    None => find_in_pack_ids(&self.pack_ids, p)?.map(|(pack, _)| pack),
                };
                if let Some(pack) = pack
                    && !packs.contains(&pack)
                {
                    packs.push(pack);
                }
            }
            if !packs.is_empty() {
                self.commit_packs
                    .insert(&commit.as_bytes()[..], &join_ids(&packs)[..])
                    .map_err(|e| StoreError::table("commit_packs", commit.to_hex(), e))?;
            }
        }
        Ok(())
    }

    fn loose(&mut self, id: &Id, bytes: &[u8]) -> Result<(), StoreError> {
        self.values
            .insert(&id.as_bytes()[..], bytes)
            .map(drop)
            .map_err(|e| StoreError::table("values", id.to_hex(), e))
    }

    /// Stores `group` as one pack (with an index entry per value when `index`), or loose
    /// when it is too small (or one value too large); answers the pack's id.
    fn group(
        &mut self,
        store: &Store,
        group: &[(Id, &[u8])],
        index: bool,
    ) -> Result<Option<Id>, StoreError> {
        let total: usize = group.iter().map(|(_, v)| v.len()).sum();
        if group.len() < MIN_PACK_VALUES || total > MAX_PACK_BYTES {
            group.iter().try_for_each(|(id, v)| self.loose(id, v))?;
            return Ok(None);
        }
        let values: Vec<&[u8]> = group.iter().map(|(_, v)| *v).collect();
        let bytes = pack::encode(&values);
        let pack_id = Id::of(&bytes);
        debug_assert_eq!(
            pack::decode(&bytes, MAX_PACK_BYTES).ok().as_deref(),
            Some(&group.iter().map(|(_, v)| v.to_vec()).collect::<Vec<_>>()[..]),
            "a pack decodes to what was packed"
        );
        let ids: Vec<Id> = group.iter().map(|(id, _)| *id).collect();
        self.put_pack(&pack_id, &bytes, &ids)?;
        if index {
            for (i, id) in ids.iter().enumerate() {
                self.packed
                    .insert(&id.as_bytes()[..], &location(&pack_id, i)[..])
                    .map_err(|e| StoreError::table("packed", id.to_hex(), e))?;
            }
        }
        // A commit just written is read next (by its sender and realizers): keep it decoded.
        // Keyed by content, an entry of a transaction that then fails is never looked up.
        store
            .inner
            .packs
            .put(pack_id, Arc::new(Unpacked::from_values(&values)));
        Ok(Some(pack_id))
    }

    /// Stores pack `pack_id` (its `bytes`, whose values have `ids`) unless already stored.
    fn put_pack(&mut self, pack_id: &Id, bytes: &[u8], ids: &[Id]) -> Result<(), StoreError> {
        let key = &pack_id.as_bytes()[..];
        let fail = |e: redb::StorageError| StoreError::table("packs", pack_id.to_hex(), e);
        if self.packs.get(key).map_err(fail)?.is_none() {
            self.packs.insert(key, bytes).map_err(fail)?;
            self.pack_ids
                .insert(key, &join_ids(ids)[..])
                .map_err(|e| StoreError::table("pack_ids", pack_id.to_hex(), e))?;
        }
        Ok(())
    }
}

/// Splits `values` into runs of at most [`MAX_PACK_BYTES`] (a value larger alone).
fn split<'v, 'b>(values: &'v [(Id, &'b [u8])]) -> Vec<&'v [(Id, &'b [u8])]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for i in 0..values.len() {
        let len = values[i].1.len();
        if i > start && bytes + len > MAX_PACK_BYTES {
            out.push(&values[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += len;
    }
    if start < values.len() {
        out.push(&values[start..]);
    }
    out
}
