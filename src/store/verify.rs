//! [`Store::verify`]: re-hash every value and blob, like `git fsck`, and report every damaged
//! record instead of stopping at the first. Every pack is checked against its id, decoded,
//! and each of its values re-hashed and checked against its pack's ids record (format 3) or
//! found in the index at its place (format 2); every index entry is accounted for (memory flat: entries are counted, and only on a mismatch looked up one
//! by one to name the wrong ones).

use std::fmt;

use redb::{ReadOnlyTable, ReadableTableMetadata};

use crate::id::Id;
use crate::store::error::{StoreError, show_key};
use crate::store::open::{BLOBS, STATE, Store, VALUES};
use crate::store::packs::{
    COMMIT_PACKS, PACK_IDS, PACKED, PACKS, ValueReader, open_optional, parse_ids, parse_location,
    read_pack,
};

/// One damaged record found by [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The table (`values`, `blobs`, `state`).
    pub table: &'static str,
    /// The key: hex id, or escaped state key, or `*` when the table itself could not be read.
    pub key: String,
    /// What is wrong.
    pub problem: String,
}

/// What [`Store::verify`] checked and found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Values re-hashed, loose and packed.
    pub values_checked: u64,
    /// Packs checked against their ids and decoded.
    pub packs_checked: u64,
    /// Blobs re-hashed.
    pub blobs_checked: u64,
    /// State records read.
    pub state_records: u64,
    /// Every damaged record.
    pub damage: Vec<Damage>,
}

impl VerifyReport {
    /// Whether nothing was found damaged.
    pub fn is_ok(&self) -> bool {
        self.damage.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} values ({} packs), {} blobs, {} state records checked; {} damaged",
            self.values_checked,
            self.packs_checked,
            self.blobs_checked,
            self.state_records,
            self.damage.len()
        )?;
        for d in &self.damage {
            writeln!(f, "  {} {}: {}", d.table, d.key, d.problem)?;
        }
        Ok(())
    }
}

impl Store {
    /// Re-hashes every value and blob and reads every state record in one snapshot. Damage
    /// (wrong hash, malformed key, unreadable record) is collected, not returned as an error;
    /// `Err` means the snapshot itself could not be taken.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.guard("verifying", || self.verify_in())
    }

    fn verify_in(&self) -> Result<VerifyReport, StoreError> {
        let txn = self.read_txn()?;
        let mut report = VerifyReport::default();
        for (name, def) in [("values", VALUES), ("blobs", BLOBS)] {
            let checked = check_addressed(&txn, name, def, &mut report.damage);
            match name {
                "values" => report.values_checked = checked,
                _ => report.blobs_checked = checked,
            }
        }
        self.check_packs(&txn, &mut report);
        match Self::open_read(&txn, "state", STATE).and_then(|t| {
            t.range::<&[u8]>(..)
                .map_err(|e| StoreError::table("state", "*", e))
        }) {
            Ok(range) => {
                for item in range {
                    match item {
                        Ok((k, v)) => {
                            report.state_records += 1;
                            if let Err(e) = self.state_bytes(k.value(), v.value()) {
                                let key = crate::store::keys::describe(k.value());
                                report.damage.push(damaged("state", &key, e));
                            }
                        }
                        Err(e) => report.damage.push(damaged("state", "*", e)),
                    }
                }
            }
            Err(e) => report.damage.push(Damage {
                table: "state",
                key: "*".into(),
                problem: e.to_string(),
            }),
        }
        Ok(report)
    }
}

impl Store {
    /// Decodes every pack and re-hashes its values against its ids record; then accounts
    /// for every index entry, every ids record and every commit's packs.
    fn check_packs(&self, txn: &redb::ReadTransaction, report: &mut VerifyReport) {
        let open = |name, def| open_optional(txn, name, def).map_err(|e| damaged(name, "*", e));
        let (packs, packed) = match (open("packs", PACKS), open("packed", PACKED)) {
            (Ok(Some(p)), Ok(Some(i))) => (p, i),
            (Err(e), _) | (_, Err(e)) => return report.damage.push(e),
            // A store without the tables (format 1, read-only) holds no packs.
            _ => return,
        };
        // Absent in a store of format 2 (read-only, for `upgrade`): every value is indexed.
        let (pack_ids, commit_packs) = match (
            open("pack_ids", PACK_IDS),
            open("commit_packs", COMMIT_PACKS),
        ) {
            (Ok(i), Ok(c)) => (i, c),
            (Err(e), _) | (_, Err(e)) => return report.damage.push(e),
        };
        // Index entries that point at the value found there.
        let mut confirmed = 0u64;
        let range = match packs.range::<&[u8]>(..) {
            Ok(r) => r,
            Err(e) => return report.damage.push(damaged("packs", "*", e)),
        };
        for item in range {
            let (k, v) = match item {
                Ok(kv) => kv,
                Err(e) => {
                    report.damage.push(damaged("packs", "*", e));
                    continue;
                }
            };
            report.packs_checked += 1;
            let Some(pack_id) = id_key("packs", k.value(), &mut report.damage) else {
                continue;
            };
            let unpacked = match read_pack(&pack_id, v.value()) {
                Ok(u) => u,
                Err(e) => {
                    report.damage.push(damaged("packs", &pack_id.to_hex(), e));
                    continue;
                }
            };
            let ids = match &pack_ids {
                None => None,
                Some(table) => match pack_ids_of(table, &pack_id, unpacked.len()) {
                    Ok(ids) => Some(ids),
                    Err(e) => {
                        report
                            .damage
                            .push(damaged("pack_ids", &pack_id.to_hex(), e));
                        continue;
                    }
                },
            };
            for (i, value) in unpacked.iter().enumerate() {
                report.values_checked += 1;
                let id = Id::of(value);
                if let Some(ids) = &ids
                    && ids[i] != id
                {
                    report.damage.push(damaged(
                        "pack_ids",
                        &pack_id.to_hex(),
                        format_args!("value {i} hashes to {id}, the record says {}", ids[i]),
                    ));
                    continue;
                }
                let at = packed
                    .get(&id.as_bytes()[..])
                    .map_err(|e| e.to_string())
                    .and_then(|g| {
                        g.map(|g| parse_location(&id, g.value()).map_err(|e| e.to_string()))
                            .transpose()
                    });
                match at {
                    Ok(Some(loc)) if loc == (pack_id, i) => confirmed += 1,
                    // Stored twice (a copy in another pack is the indexed one): no loss.
                    Ok(Some(_)) => {}
                    // Found through its pack's ids record (format 3).
                    Ok(None) if ids.is_some() => {}
                    Ok(None) => report.damage.push(damaged(
                        "packed",
                        &id.to_hex(),
                        format_args!("value {i} of pack {pack_id} is not in the index"),
                    )),
                    Err(e) => report.damage.push(damaged("packed", &id.to_hex(), e)),
                }
            }
        }
        match packed.len() {
            Ok(entries) if entries == confirmed => {}
            Ok(_) => self.name_wrong_entries(txn, &packed, report),
            Err(e) => report.damage.push(damaged("packed", "*", e)),
        }
        // Every ids record and every commit's packs name stored packs.
        for (name, table) in [("pack_ids", &pack_ids), ("commit_packs", &commit_packs)] {
            if let Some(table) = table {
                check_pack_refs(name, table, &packs, &mut report.damage);
            }
        }
    }

    /// Looks up every index entry (some do not point at their value) and names the wrong ones.
    fn name_wrong_entries(
        &self,
        txn: &redb::ReadTransaction,
        packed: &redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
        report: &mut VerifyReport,
    ) {
        let reader = match ValueReader::open(self, txn) {
            Ok(r) => r,
            Err(e) => return report.damage.push(damaged("packed", "*", e)),
        };
        let range = match packed.range::<&[u8]>(..) {
            Ok(r) => r,
            Err(e) => return report.damage.push(damaged("packed", "*", e)),
        };
        for item in range {
            let key = match item {
                Ok((k, _)) => k.value().to_vec(),
                Err(e) => {
                    report.damage.push(damaged("packed", "*", e));
                    continue;
                }
            };
            let Some(id) = id_key("packed", &key, &mut report.damage) else {
                continue;
            };
            if let Err(e) = reader.get_packed(&id) {
                report.damage.push(damaged("packed", &id.to_hex(), e));
            }
        }
    }
}

type ReadTable = ReadOnlyTable<&'static [u8], &'static [u8]>;

/// The ids record of pack `pack`, which must name `count` values.
fn pack_ids_of(table: &ReadTable, pack: &Id, count: usize) -> Result<Vec<Id>, String> {
    let raw = table
        .get(&pack.as_bytes()[..])
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the pack has no ids record".to_string())?;
    let ids = parse_ids("pack_ids", pack, raw.value()).map_err(|e| e.to_string())?;
    if ids.len() != count {
        return Err(format!(
            "the record names {} values, the pack holds {count}",
            ids.len()
        ));
    }
    Ok(ids)
}

/// Each record of `table` (`pack_ids`: keyed by a pack; `commit_packs`: listing packs)
/// must name packs that are stored.
fn check_pack_refs(
    name: &'static str,
    table: &ReadTable,
    packs: &ReadTable,
    damage: &mut Vec<Damage>,
) {
    let range = match table.range::<&[u8]>(..) {
        Ok(r) => r,
        Err(e) => return damage.push(damaged(name, "*", e)),
    };
    for item in range {
        let (k, v) = match item {
            Ok(kv) => kv,
            Err(e) => {
                damage.push(damaged(name, "*", e));
                continue;
            }
        };
        let Some(key) = id_key(name, k.value(), damage) else {
            continue;
        };
        let named = match name {
            "pack_ids" => Ok(vec![key]),
            _ => parse_ids(name, &key, v.value()),
        };
        let named = match named {
            Ok(n) => n,
            Err(e) => {
                damage.push(damaged(name, &key.to_hex(), e));
                continue;
            }
        };
        for pack in named {
            match packs.get(&pack.as_bytes()[..]) {
                Ok(Some(_)) => {}
                Ok(None) => damage.push(damaged(
                    name,
                    &key.to_hex(),
                    format_args!("pack {pack} is missing"),
                )),
                Err(e) => damage.push(damaged(name, &key.to_hex(), e)),
            }
        }
    }
}

/// The id a key of `table` holds, or `None` with the damage noted when it is no 32-byte id.
fn id_key(table: &'static str, key: &[u8], damage: &mut Vec<Damage>) -> Option<Id> {
    match <[u8; 32]>::try_from(key) {
        Ok(raw) => Some(Id(raw)),
        Err(_) => {
            damage.push(damaged(table, &show_key(key), "key is not a 32-byte id"));
            None
        }
    }
}

fn damaged(table: &'static str, key: &str, e: impl fmt::Display) -> Damage {
    Damage {
        table,
        key: key.to_string(),
        problem: e.to_string(),
    }
}

fn check_addressed(
    txn: &redb::ReadTransaction,
    name: &'static str,
    def: redb::TableDefinition<&'static [u8], &'static [u8]>,
    damage: &mut Vec<Damage>,
) -> u64 {
    let table = match Store::open_read(txn, name, def) {
        Ok(t) => t,
        Err(e) => {
            damage.push(damaged(name, "*", e));
            return 0;
        }
    };
    let range = match table.range::<&[u8]>(..) {
        Ok(r) => r,
        Err(e) => {
            damage.push(damaged(name, "*", e));
            return 0;
        }
    };
    let mut checked = 0;
    for item in range {
        let (k, v) = match item {
            Ok(kv) => kv,
            Err(e) => {
                damage.push(damaged(name, "*", e));
                continue;
            }
        };
        checked += 1;
        let Some(id) = id_key(name, k.value(), damage) else {
            continue;
        };
        let actual = Id::of(v.value());
        if actual != id {
            damage.push(damaged(
                name,
                &id.to_hex(),
                format_args!("bytes hash to {actual}"),
            ));
        }
    }
    checked
}
