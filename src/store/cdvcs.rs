//! A CDVCS in the store: the one place that knows how its graph entries, heads and commit
//! records are laid out, for the replica, `log`, `merge` and anyone else who loads or writes one.

use crate::crdt::{Cdvcs, CdvcsError, CrdtKey, EncodedCommit};
use crate::id::{Id, Verified};
use crate::identity::PublicKey;
use crate::store::packs::ValueReader;
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
    let Some(heads) = stored_heads(store, key)? else {
        // No heads record: a CDVCS not stored, unless its graph is (the record's key was
        // damaged, and redb finds nothing under a damaged key).
        let graph = keys::graph_prefix(&key.user, &key.id);
        if store
            .seek_state_key(&graph, &graph)
            .map_err(store_err)?
            .is_some()
        {
            return Err(LoadError::Damaged {
                key: key.clone(),
                what: "heads record".into(),
                detail: "missing, though the graph is stored".into(),
            });
        }
        return Ok(None);
    };
    let damaged = |what: String, detail: String| LoadError::Damaged {
        key: key.clone(),
        what,
        detail,
    };
    let prefix = keys::graph_prefix(&key.user, &key.id);
    let mut entries = Vec::new();
    for (k, v) in store.scan_state(&prefix).map_err(store_err)? {
        let id = keys::graph_entry_commit(&k)
            .ok_or_else(|| damaged("graph key".into(), format!("{} bytes", k.len())))?;
        let (parents, _) = crate::store::graph::decode_entry(&v)
            .map_err(|e| damaged(format!("graph entry of commit {id}"), e))?;
        entries.push((id, parents));
    }
    Cdvcs::restore(entries, heads)
        .map(Some)
        .map_err(|source| LoadError::Inconsistent {
            key: key.clone(),
            source,
        })
}

/// The heads record of `key`, decoded; `None` when there is none.
pub(crate) fn stored_heads(store: &Store, key: &CrdtKey) -> Result<Option<Vec<Id>>, LoadError> {
    let raw = store
        .get_state(&keys::heads(&key.user, &key.id))
        .map_err(|source| LoadError::Store {
            key: key.clone(),
            source: Box::new(source),
        })?;
    raw.map(|raw| {
        rmp_serde::from_slice(&raw).map_err(|e| LoadError::Damaged {
            key: key.clone(),
            what: "heads record".into(),
            detail: e.to_string(),
        })
    })
    .transpose()
}

/// Joins the heads of the stored CDVCS `key` with their deterministic merge, written
/// durably (for a store no node runs on: `replikativ merge`). Answers the merge (None with at
/// most one head) and the state afterwards; `None` when the store does not hold `key`.
pub fn join_stored(
    store: &Store,
    key: &CrdtKey,
) -> Result<Option<(Option<EncodedCommit>, Cdvcs)>, LoadError> {
    let Some(mut state) = load(store, key)? else {
        return Ok(None);
    };
    let Some((merge, op)) = state.prepare_join() else {
        return Ok(Some((None, state)));
    };
    let batch = commits_batch_with(key, std::slice::from_ref(&merge), &op.heads, &|id| {
        state.generation(id)
    });
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
    Ok(Some((Some(merge), state)))
}

/// A stored commit and the params values its transactions reference, read from one snapshot.
#[derive(Clone, Debug)]
pub struct StoredCommit {
    /// The commit as its author encoded it.
    pub commit: EncodedCommit,
    /// Each transaction's params id and bytes (re-hashed on read), in transaction order;
    /// `None` for a value not stored (the root's param names the CDVCS, it is no value).
    pub params: Vec<(Id, Option<Vec<u8>>)>,
}

/// Why a commit could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitReadError {
    /// Reading the store failed (a damaged value is reported here, naming its id).
    #[error("reading commit {id} from the store")]
    Store {
        /// The commit.
        id: Id,
        /// Why.
        #[source]
        source: Box<StoreError>,
    },
    /// The stored record is not a commit.
    #[error("the stored record {id} is not a commit")]
    NotACommit {
        /// The record.
        id: Id,
    },
}

fn read_failed(id: &Id) -> impl Fn(StoreError) -> CommitReadError + Copy + '_ {
    move |source| CommitReadError::Store {
        id: *id,
        source: Box::new(source),
    }
}

/// The commit `id` with its params, from one read snapshot (one transaction for the commit and
/// all its values); `None` when the commit is not stored. Used by realizers, senders and op
/// logs alike.
pub fn load_commit(store: &Store, id: &Id) -> Result<Option<StoredCommit>, CommitReadError> {
    let fail = read_failed(id);
    let guarded = store.guard("reading a commit", || Ok(load_commit_in(store, id)));
    guarded.map_err(fail)?
}

fn load_commit_in(store: &Store, id: &Id) -> Result<Option<StoredCommit>, CommitReadError> {
    let fail = read_failed(id);
    let txn = store.read_txn().map_err(fail)?;
    let values = ValueReader::open(store, &txn).map_err(fail)?;
    let Some(commit) = read_record(store, &txn, &values, id)? else {
        return Ok(None);
    };
    let ids: Vec<Id> = commit
        .commit
        .transactions
        .iter()
        .map(|t| t.params)
        .collect();
    let found = match commit.commit.parents.is_empty() {
        true => vec![None; ids.len()],
        // Through the packs written with the commit: no lookup per value.
        false => values.params(id, &ids).map_err(fail)?,
    };
    let params = ids.into_iter().zip(found).collect();
    Ok(Some(StoredCommit { commit, params }))
}

/// A new CDVCS `key` (its deterministic root) and the batch that stores it.
pub fn create(key: &CrdtKey) -> (Cdvcs, WriteBatch) {
    let (state, root) = Cdvcs::new(key);
    let mut batch = commits_batch(key, std::slice::from_ref(&root), &[root.id]);
    batch.put_state(keys::meta(&key.user, &key.id), b"cdvcs".to_vec());
    (state, batch)
}

/// The batch that stores new `commits` of `key` (records and graph entries) and its `heads`
/// after them; write it atomically, then apply the commits to the in-memory state. Each
/// entry's generation is written when its parents are roots or in `commits` (else it is
/// derived on read: use [`commits_batch_with`] where the state is at hand).
pub fn commits_batch(key: &CrdtKey, commits: &[EncodedCommit], heads: &[Id]) -> WriteBatch {
    commits_batch_with(key, commits, heads, &|_| None)
}

/// [`commits_batch`] with the generations of parents outside `commits` from `generation`
/// (the in-memory state's), so every entry is written with its generation.
pub fn commits_batch_with(
    key: &CrdtKey,
    commits: &[EncodedCommit],
    heads: &[Id],
    generation: &dyn Fn(&Id) -> Option<u64>,
) -> WriteBatch {
    let mut batch = WriteBatch::new();
    let mut in_batch: std::collections::HashMap<Id, u64> = std::collections::HashMap::new();
    for c in commits {
        let mut g = Some(0u64);
        for p in &c.commit.parents {
            let pg = in_batch.get(p).copied().or_else(|| generation(p));
            g = g.zip(pg).map(|(a, b)| a.max(b));
        }
        let g = g.map(|g| g.saturating_add(1));
        if let Some(g) = g {
            in_batch.insert(c.id, g);
        }
        // An encoded commit's id was computed from its bytes (encoded here, or received and
        // hashed once by the codec): no second hash.
        let params = match c.commit.parents.is_empty() {
            true => Vec::new(),
            false => c.commit.transactions.iter().map(|t| t.params).collect(),
        };
        batch.put_commit(Verified::hashed(c.id, c.bytes.clone()), params);
        batch.put_state(
            keys::graph_entry(&key.user, &key.id, &c.id),
            crate::store::graph::entry_value(&c.commit.parents, g),
        );

        if let Some(signature) = &c.signature {
            batch.put_state(keys::commit_signature(&c.id), signature.to_vec());
        }
    }
    batch.put_state(keys::heads(&key.user, &key.id), encode(&heads.to_vec()));
    batch
}

/// The commit record `id` with its signature (no params), from one read snapshot; `None`
/// when the commit is not stored.
pub fn load_commit_record(
    store: &Store,
    id: &Id,
) -> Result<Option<EncodedCommit>, CommitReadError> {
    let fail = read_failed(id);
    let guarded = store.guard("reading a commit record", || {
        let txn = store.read_txn()?;
        let values = ValueReader::open(store, &txn)?;
        Ok(read_record(store, &txn, &values, id))
    });
    guarded.map_err(fail)?
}

/// The commit record `id` and its signature, read in `txn` through its `values` reader.
fn read_record(
    store: &Store,
    txn: &redb::ReadTransaction,
    values: &ValueReader<'_>,
    id: &Id,
) -> Result<Option<EncodedCommit>, CommitReadError> {
    let fail = read_failed(id);
    let Some(bytes) = values.get(id).map_err(fail)? else {
        return Ok(None);
    };
    let mut commit =
        crate::crdt::Commit::decode(&bytes).map_err(|_| CommitReadError::NotACommit { id: *id })?;
    commit.signature = read_signature(store, txn, id).map_err(fail)?;
    // A commit authored by a key was stored with its signature (it was checked first): none
    // found means its record's key was damaged (redb finds no record under a damaged key).
    // The root is unsigned: it is deterministic, named by its CDVCS alone.
    if commit.signature.is_none()
        && !commit.commit.parents.is_empty()
        && (commit.commit.author)
            .parse::<crate::identity::PublicKey>()
            .is_ok()
    {
        return Err(fail(StoreError::StateDamaged {
            record: keys::describe(&keys::commit_signature(id)),
            detail: "missing, though the commit's author is a key".into(),
        }));
    }
    Ok(Some(commit))
}

/// The stored signature of commit `id`, read in `txn` (the commit's snapshot). A stored record
/// that is not 64 bytes is no signature: the commit then fails verification where it is sent.
fn read_signature(
    store: &Store,
    txn: &redb::ReadTransaction,
    id: &Id,
) -> Result<Option<crate::crdt::authorship::Signature>, StoreError> {
    let table = Store::open_read(txn, "state", crate::store::open::STATE)?;
    let raw = crate::store::read::get_state_in(store, &table, &keys::commit_signature(id))?;
    Ok(raw.and_then(|r| r.try_into().ok()))
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Vectors of fixed-width ids always encode.
    rmp_serde::to_vec(v).unwrap_or_default()
}

/// The heads peer `peer` was last known to hold of `crdt` (saved when a sync with it settled,
/// so a reconnect starts from there): empty when none is saved. A hint that cannot be read is
/// logged and ignored: it only costs a longer negotiation.
pub fn peer_heads_hint(store: &Store, peer: &PublicKey, crdt: &CrdtKey) -> Vec<Id> {
    let key = keys::peer_heads(peer.as_bytes(), &crdt.user, &crdt.id);
    match store.get_state(&key) {
        Ok(Some(raw)) => match rmp_serde::from_slice(&raw) {
            Ok(heads) => heads,
            Err(e) => {
                tracing::warn!(%peer, crdt = %crdt, error = %e, "ignoring a damaged peer-heads hint");
                Vec::new()
            }
        },
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!(%peer, crdt = %crdt, error = %e, "cannot read a peer-heads hint");
            Vec::new()
        }
    }
}

/// The batch saving `heads` as `peer`'s hint of `crdt` when the stored hint differs (a
/// reconnect sharing every CDVCS by equal digests writes nothing).
pub fn changed_hint(
    store: &Store,
    peer: &PublicKey,
    crdt: &CrdtKey,
    heads: &[Id],
) -> Option<WriteBatch> {
    (peer_heads_hint(store, peer, crdt) != heads).then(|| peer_heads_batch(peer, crdt, heads))
}

/// A batch saving `heads` as the hint of what `peer` holds of `crdt`.
pub fn peer_heads_batch(peer: &PublicKey, crdt: &CrdtKey, heads: &[Id]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    // Encoding ids into a Vec cannot fail: the encoder only fails on writer I/O.
    let encoded = rmp_serde::to_vec(heads).unwrap_or_default();
    batch.put_state(
        keys::peer_heads(peer.as_bytes(), &crdt.user, &crdt.id),
        encoded,
    );
    batch
}

/// Why a stored CDVCS's history could not be judged by the writer rule.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JudgeError {
    /// Loading the CDVCS failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Reading a commit failed.
    #[error(transparent)]
    Read(#[from] CommitReadError),
    /// A stored commit is in the graph but not in the store, or the graph is inconsistent.
    #[error("CDVCS {key}: commit {id} cannot be read back")]
    Missing {
        /// Which CDVCS.
        key: CrdtKey,
        /// The commit.
        id: Id,
    },
    /// The writer rule's stored records could not be read.
    #[error("CDVCS {key}: the writer rule's records")]
    Record {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: crate::crdt::authorship::RuleError,
    },
    /// A stored commit breaks the rule (stored before signatures were checked, or damaged).
    #[error("CDVCS {key}: a stored commit is refused by the writer rule")]
    Refused {
        /// Which CDVCS.
        key: CrdtKey,
        /// Why.
        #[source]
        source: crate::crdt::authorship::Refusal,
    },
}

#[cfg(test)]
#[path = "cdvcs_tests.rs"]
mod tests;
