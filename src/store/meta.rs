//! The store's meta table: what kind of file this is and which format it is in. An empty redb
//! file becomes a store; anything else must say it is one, of a format this build reads.

use std::path::Path;

use redb::{Database, ReadableDatabase, TableHandle};

use crate::store::error::StoreError;
use crate::store::open::{BLOBS, FORMAT_VERSION, META, STATE, VALUES};
use crate::store::packs::{COMMIT_PACKS, PACK_IDS, PACKED, PACKS};

const KIND: &[u8] = b"replikativ-store";

/// The format of the store in `db`: `None` for an empty redb database (no tables); an error
/// for a redb database that is not a replikativ store or whose meta table cannot be read.
pub(crate) fn read_format(
    db: &impl ReadableDatabase,
    path: &Path,
) -> Result<Option<u32>, StoreError> {
    let read = db
        .begin_read()
        .map_err(|e| StoreError::txn("beginning a read to check the format", e))?;
    match read.open_table(META) {
        Ok(meta) => {
            let kind = meta
                .get("kind")
                .map_err(|e| StoreError::table("replikativ_meta", "kind", e))?
                .map(|g| g.value().to_vec());
            if kind.as_deref() != Some(KIND) {
                return Err(StoreError::NotAStore {
                    path: path.to_path_buf(),
                    reason: "its meta table does not name a replikativ store".into(),
                });
            }
            meta.get("format")
                .map_err(|e| StoreError::table("replikativ_meta", "format", e))?
                .and_then(|g| <[u8; 4]>::try_from(g.value()).ok())
                .map(|raw| Some(u32::from_be_bytes(raw)))
                .ok_or_else(|| StoreError::Damaged {
                    path: path.to_path_buf(),
                    detail: "the meta table has no readable format version".into(),
                })
        }
        Err(redb::TableError::TableDoesNotExist(_)) => {
            let tables: Vec<String> = read
                .list_tables()
                .map_err(|e| StoreError::table("*", "list", e))?
                .map(|t| t.name().to_string())
                .collect();
            if tables.is_empty() {
                return Ok(None);
            }
            Err(StoreError::NotAStore {
                path: path.to_path_buf(),
                reason: format!(
                    "a redb database of another program (tables: {})",
                    tables.join(", ")
                ),
            })
        }
        Err(e) => Err(StoreError::table("replikativ_meta", "*", e)),
    }
}

/// Checks the meta table of an existing store, or writes it (and creates the tables) in an
/// empty redb file. A redb file that has tables but no meta belongs to another program; a
/// store of another format than this build's is refused (an older one names `upgrade`).
pub(crate) fn check_or_write_meta(db: &Database, path: &Path) -> Result<(), StoreError> {
    match read_format(db, path)? {
        None => write_meta(db),
        Some(found) if found > FORMAT_VERSION => Err(StoreError::NewerFormat {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        }),
        Some(found) if found < FORMAT_VERSION => Err(crate::store::files::older(path, found)),
        Some(_) => Ok(()),
    }
}

fn write_meta(db: &Database) -> Result<(), StoreError> {
    let txn = db
        .begin_write()
        .map_err(|e| StoreError::txn("beginning the write that creates the store", e))?;
    {
        let mut meta = txn
            .open_table(META)
            .map_err(|e| StoreError::table("replikativ_meta", "*", e))?;
        meta.insert("kind", KIND)
            .map_err(|e| StoreError::table("replikativ_meta", "kind", e))?;
        meta.insert("format", &FORMAT_VERSION.to_be_bytes()[..])
            .map_err(|e| StoreError::table("replikativ_meta", "format", e))?;
        for (name, def) in [
            ("values", VALUES),
            ("blobs", BLOBS),
            ("state", STATE),
            ("packs", PACKS),
            ("packed", PACKED),
            ("pack_ids", PACK_IDS),
            ("commit_packs", COMMIT_PACKS),
        ] {
            txn.open_table(def)
                .map_err(|e| StoreError::table(name, "*", e))?;
        }
    }
    txn.commit()
        .map_err(|e| StoreError::txn("committing the new store's meta table", e))
}

impl crate::store::Store {
    /// The format version recorded in the store (this build's [`FORMAT_VERSION`], or an
    /// older one in a store opened with [`Store::open_read_only`](crate::store::Store::open_read_only)).
    pub fn format(&self) -> Result<u32, StoreError> {
        self.guard("reading the format", || self.format_in())
    }

    fn format_in(&self) -> Result<u32, StoreError> {
        let txn = self.read_txn()?;
        let meta = txn
            .open_table(META)
            .map_err(|e| StoreError::table("replikativ_meta", "*", e))?;
        meta.get("format")
            .map_err(|e| StoreError::table("replikativ_meta", "format", e))?
            .and_then(|g| <[u8; 4]>::try_from(g.value()).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| StoreError::Damaged {
                path: self.shown_path(),
                detail: "the meta table has no readable format version".into(),
            })
    }
}
