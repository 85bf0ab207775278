//! A CDVCS in the store: the one place that knows how its graph entries, heads and commit
//! records are laid out, for the replica, `log`, `merge` and anyone else who loads or writes one.

use crate::crdt::{Cdvcs, CdvcsError, CrdtKey, EncodedCommit};
use crate::id::{Id, Verified};
use crate::store::{Store, StoreError, WriteBatch, keys};

/// Why a stored CDVCS could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading or writing the store failed.
    #[error("CDVCS {key}: store")]
    Store {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: Box<StoreError>,
    },
    /// A stored record could not be decoded.
    #[error("CDVCS {key}: the stored {what} is damaged ({detail})")]
    Damaged {
        /// Which CDVCS.
        key: CrdtKey,
        /// Which record.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The stored graph and heads do not form a CDVCS.
    #[error("CDVCS {key}: the stored graph is inconsistent")]
    Inconsistent {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: CdvcsError,
    },
}

/// Loads the CDVCS `key` (graph entries and heads, no commit records): `None` when the store
/// does not hold it.
pub fn load(store: &Store, key: &CrdtKey) -> Result<Option<Cdvcs>, LoadError> {
    let store_err = |source| LoadError::Store {
        key: key.clone(),
        source: Box::new(source),
    };
    let Some(raw) = store
        .get_state(&keys::heads(&key.user, &key.id))
        .map_err(store_err)?
    else {
        return Ok(None);
    };
    let damaged = |what: String, detail: String| LoadError::Damaged {
        key: key.clone(),
        what,
        detail,
    };
    let heads: Vec<Id> =
        rmp_serde::from_slice(&raw).map_err(|e| damaged("heads record".into(), e.to_string()))?;
    let prefix = keys::graph_prefix(&key.user, &key.id);
    let mut entries = Vec::new();
    for (k, v) in store.scan_state(&prefix).map_err(store_err)? {
        let id = keys::graph_entry_commit(&k)
            .ok_or_else(|| damaged("graph key".into(), format!("{} bytes", k.len())))?;
        let parents: Vec<Id> = rmp_serde::from_slice(&v)
            .map_err(|e| damaged(format!("graph entry of commit {id}"), e.to_string()))?;
        entries.push((id, parents));
    }
    Cdvcs::restore(entries, heads)
        .map(Some)
        .map_err(|source| LoadError::Inconsistent {
            key: key.clone(),
            source,
        })
}

/// Joins the heads of the stored CDVCS `key` with their deterministic merge, written
/// durably (for a store no node runs on: `replikativ merge`, a writer's last act). Answers the
/// merge (None with at most one head) and the state afterwards; `None` state when the store
/// does not hold `key`.
pub fn join_stored(store: &Store, key: &CrdtKey) -> Result<Option<(Option<Id>, Cdvcs)>, LoadError> {
    let Some(mut state) = load(store, key)? else {
        return Ok(None);
    };
    let Some((merge, op)) = state.prepare_join() else {
        return Ok(Some((None, state)));
    };
    let batch = commits_batch(key, std::slice::from_ref(&merge), &op.heads);
    store.write(&batch).map_err(|source| LoadError::Store {
        key: key.clone(),
        source: Box::new(source),
    })?;
    state
        .downstream(&op)
        .map_err(|source| LoadError::Inconsistent {
            key: key.clone(),
            source,
        })?;
    Ok(Some((Some(merge.id), state)))
}

/// A new CDVCS `key` (its deterministic root) and the batch that stores it.
pub fn create(key: &CrdtKey) -> (Cdvcs, WriteBatch) {
    let (state, root) = Cdvcs::new(key);
    let mut batch = commits_batch(key, std::slice::from_ref(&root), &[root.id]);
    batch.put_state(keys::meta(&key.user, &key.id), b"cdvcs".to_vec());
    (state, batch)
}

/// The batch that stores new `commits` of `key` (records and graph entries) and its `heads`
/// after them; write it atomically, then apply the commits to the in-memory state.
pub fn commits_batch(key: &CrdtKey, commits: &[EncodedCommit], heads: &[Id]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for c in commits {
        // An encoded commit's id was computed from its bytes (encoded here, or received and
        // hashed once by the codec): no second hash.
        batch.put_verified_value(Verified::hashed(c.id, c.bytes.clone()));
        batch.put_state(
            keys::graph_entry(&key.user, &key.id, &c.id),
            encode(&c.commit.parents),
        );
    }
    batch.put_state(keys::heads(&key.user, &key.id), encode(&heads.to_vec()));
    batch
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Vectors of fixed-width ids always encode.
    rmp_serde::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::Transaction;

    #[test]
    fn a_created_cdvcs_with_a_commit_loads_back_equal() {
        let store = Store::in_memory().expect("store");
        let key = CrdtKey::new("u", uuid::Uuid::from_u128(3));
        assert!(load(&store, &key).expect("load").is_none());
        let (mut state, batch) = create(&key);
        store.write(&batch).expect("write");
        let tx = Transaction {
            op: "note".into(),
            params: Id::of(b"x"),
        };
        let (c, op) = state.prepare_commit("a", 1, vec![tx]).expect("commit");
        store
            .write(&commits_batch(&key, std::slice::from_ref(&c), &op.heads))
            .expect("write");
        state.downstream(&op).expect("apply");
        assert_eq!(load(&store, &key).expect("load"), Some(state));
    }

    #[test]
    fn a_damaged_heads_record_is_named() {
        let store = Store::in_memory().expect("store");
        let key = CrdtKey::new("u", uuid::Uuid::from_u128(4));
        let mut batch = WriteBatch::new();
        batch.put_state(keys::heads(&key.user, &key.id), b"\xc1".to_vec());
        store.write(&batch).expect("write");
        let err = load(&store, &key).expect_err("damaged");
        assert!(matches!(err, LoadError::Damaged { ref what, .. } if what == "heads record"));
    }
}
