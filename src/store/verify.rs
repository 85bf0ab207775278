//! [`Store::verify`]: re-hash every value and blob, like `git fsck`, and report every damaged
//! record instead of stopping at the first.

use std::fmt;

use crate::id::Id;
use crate::store::error::{StoreError, show_key};
use crate::store::open::{BLOBS, STATE, Store, VALUES};

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
    /// Values re-hashed.
    pub values_checked: u64,
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
            "{} values, {} blobs, {} state records checked; {} damaged",
            self.values_checked,
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
        let txn = self.read_txn()?;
        let mut report = VerifyReport::default();
        for (name, def) in [("values", VALUES), ("blobs", BLOBS)] {
            let checked = check_addressed(&txn, name, def, &mut report.damage);
            match name {
                "values" => report.values_checked = checked,
                _ => report.blobs_checked = checked,
            }
        }
        match Self::open_read(&txn, "state", STATE).and_then(|t| {
            t.range::<&[u8]>(..)
                .map_err(|e| StoreError::table("state", "*", e))
        }) {
            Ok(range) => {
                for item in range {
                    match item {
                        Ok(_) => report.state_records += 1,
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
        let Ok(raw) = <[u8; 32]>::try_from(k.value()) else {
            damage.push(damaged(
                name,
                &show_key(k.value()),
                "key is not a 32-byte id",
            ));
            continue;
        };
        let id = Id(raw);
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
