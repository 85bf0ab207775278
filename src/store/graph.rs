//! A CDVCS's graph as the store answers it by id: each graph entry holds the commit's parents
//! and, since this build, its generation, so a node opens a CDVCS with its heads only
//! ([`open`]) and walks reach older commits by point reads bounded by generation.
//!
//! # The entry's bytes
//!
//! `msgpack(parents)` followed by `msgpack(generation)`. An entry written before generations
//! were kept (store format 4 as first written) is `msgpack(parents)` alone; a reader of that
//! layout decodes the parents and ignores what follows, so the store format is unchanged. A
//! missing generation is derived from the parents' (deterministic) and, on the first
//! [`open`] of such a CDVCS, written into every entry once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::crdt::cdvcs::{GraphEntry, GraphSource, SourceError};
use crate::crdt::{Cdvcs, CrdtKey};
use crate::id::Id;
use crate::store::cdvcs::{LoadError, load, stored_heads};
use crate::store::{Store, StoreError, WriteBatch, keys};

/// Entries a [`StoreGraph`] keeps decoded in memory before it starts over.
const CACHE_ENTRIES: usize = 1 << 14;
/// Entries per write transaction when generations are written into an older CDVCS.
const MIGRATE_BATCH: usize = 10_000;

/// The bytes of a graph entry: `parents`, then `generation` when known.
pub fn entry_value(parents: &[Id], generation: Option<u64>) -> Vec<u8> {
    // Vectors of fixed-width ids and integers always encode.
    let mut out = rmp_serde::to_vec(parents).unwrap_or_default();
    if let Some(g) = generation {
        out.extend(rmp_serde::to_vec(&g).unwrap_or_default());
    }
    out
}

/// Decodes a graph entry: its parents and, when stored, its generation.
pub fn decode_entry(raw: &[u8]) -> Result<(Vec<Id>, Option<u64>), String> {
    let parents: Vec<Id> = rmp_serde::from_slice(raw).map_err(|e| e.to_string())?;
    let used = entry_value(&parents, None).len();
    let rest = raw.get(used..).unwrap_or_default();
    if rest.is_empty() {
        return Ok((parents, None));
    }
    let generation: u64 = rmp_serde::from_slice(rest).map_err(|e| e.to_string())?;
    let encoded = rmp_serde::to_vec(&generation).map_or(0, |v| v.len());
    if generation == 0 || used + encoded != raw.len() {
        return Err(format!("{} bytes after the generation", raw.len() - used));
    }
    Ok((parents, Some(generation)))
}

/// A graph entry as stored: the parents and, when written, the generation.
type Stored = (Vec<Id>, Option<u64>);

/// The graph of one stored CDVCS, answered by point reads (with a bounded cache of decoded
/// entries); generations missing from older entries are derived from the parents'.
pub struct StoreGraph {
    store: Store,
    key: CrdtKey,
    cache: Mutex<HashMap<Id, GraphEntry>>,
}

impl StoreGraph {
    /// The graph of `key` in `store`.
    pub fn new(store: Store, key: CrdtKey) -> StoreGraph {
        StoreGraph {
            store,
            key,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, id: &Id) -> Option<GraphEntry> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(id).cloned()
    }

    fn remember(&self, id: Id, entry: &GraphEntry) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(id, entry.clone());
    }

    /// The stored entry of `id` as written (generation possibly missing).
    fn read(&self, id: &Id) -> Result<Option<Stored>, SourceError> {
        let k = keys::graph_entry(&self.key.user, &self.key.id, id);
        let raw = self.store.get_state(&k).map_err(|e| {
            tracing::error!(cdvcs = %self.key, commit = %id, error = %e, "reading a graph entry");
            SourceError(format!("CDVCS {}: {e}", self.key))
        })?;
        raw.map(|raw| {
            decode_entry(&raw).map_err(|e| {
                SourceError(format!(
                    "CDVCS {}: the graph entry of {id} is damaged ({e})",
                    self.key
                ))
            })
        })
        .transpose()
    }

    /// The generation of `id` derived from its ancestors' (iteratively: a chain of millions
    /// cannot overflow the stack), each derived one cached.
    fn derive(&self, id: Id, parents: Vec<Id>) -> Result<GraphEntry, SourceError> {
        let mut derived: HashMap<Id, u64> = HashMap::new();
        // A damaged graph could name a descendant as a parent: refused, not walked forever.
        let mut on_stack: std::collections::HashSet<Id> = [id].into();
        let mut stack: Vec<(Id, Vec<Id>)> = vec![(id, parents)];
        while let Some((cur, ps)) = stack.last() {
            let mut generation = 0u64;
            let mut pending = None;
            for p in ps {
                match derived
                    .get(p)
                    .copied()
                    .or_else(|| self.cached(p).map(|e| e.generation))
                {
                    Some(g) => generation = generation.max(g),
                    None => match self.read(p)? {
                        Some((_, Some(g))) => generation = generation.max(g),
                        Some((pps, None)) => {
                            pending = Some((*p, pps));
                            break;
                        }
                        None => {
                            return Err(SourceError(format!(
                                "CDVCS {}: commit {cur} names parent {p}, which is not stored",
                                self.key
                            )));
                        }
                    },
                }
            }
            if let Some(next) = pending {
                if !on_stack.insert(next.0) {
                    return Err(SourceError(format!(
                        "CDVCS {}: commit {} is its own ancestor in the stored graph",
                        self.key, next.0
                    )));
                }
                stack.push(next);
                continue;
            }
            let Some((cur, ps)) = stack.pop() else {
                break;
            };
            on_stack.remove(&cur);

            let entry = GraphEntry {
                parents: ps,
                generation: generation.saturating_add(1),
            };
            derived.insert(cur, entry.generation);
            self.remember(cur, &entry);
            if stack.is_empty() {
                return Ok(entry);
            }
        }
        Err(SourceError(format!("CDVCS {}: deriving {id}", self.key)))
    }
}

impl GraphSource for StoreGraph {
    fn entry(&self, id: &Id) -> Result<Option<GraphEntry>, SourceError> {
        if let Some(e) = self.cached(id) {
            return Ok(Some(e));
        }
        match self.read(id)? {
            None => Ok(None),
            Some((parents, Some(generation))) => {
                let entry = GraphEntry {
                    parents,
                    generation,
                };
                self.remember(*id, &entry);
                Ok(Some(entry))
            }
            Some((parents, None)) => self.derive(*id, parents).map(Some),
        }
    }
}

/// Opens the stored CDVCS `key` with its heads only, its other commits read from `store`
/// when a walk reaches them: O(heads), whatever the history's length. `None` when the store
/// does not hold it. A CDVCS whose head entries lack their generation (written before
/// generations were kept) first gets every entry's generation written, once.
pub fn open(store: &Store, key: &CrdtKey) -> Result<Option<Cdvcs>, LoadError> {
    let store_err = |source: StoreError| LoadError::Store {
        key: key.clone(),
        source: Box::new(source),
    };
    let Some(heads) = stored_heads(store, key)? else {
        // No heads record: whether the graph is stored (damage) is `load`'s to tell.
        return load(store, key);
    };
    if heads.is_empty() {
        // No heads recorded: `load` derives them from the whole graph.
        return load(store, key);
    }
    let mut older = false;

    for h in &heads {
        let raw = store
            .get_state(&keys::graph_entry(&key.user, &key.id, h))
            .map_err(store_err)?;
        older = older || raw.is_some_and(|r| decode_entry(&r).is_ok_and(|(_, g)| g.is_none()));
    }
    if older {
        add_generations(store, key)?;
    }
    let source = Arc::new(StoreGraph::new(store.clone(), key.clone()));
    Cdvcs::backed(source, heads)
        .map(Some)
        .map_err(|source| LoadError::Inconsistent {
            key: key.clone(),
            source,
        })
}

/// Writes its generation into every graph entry of `key` that lacks one (the whole graph
/// loaded once, checked as [`load`] checks it); the heads' entries last, so an interrupted
/// run is redone by the next [`open`]. Parents are kept as they are.
fn add_generations(store: &Store, key: &CrdtKey) -> Result<(), LoadError> {
    let Some(full) = load(store, key)? else {
        return Ok(());
    };
    let heads = full.heads().clone();
    let mut batch = WriteBatch::new();
    let mut in_batch = 0;
    let entries = full.entries().filter(|(id, _)| !heads.contains(id));
    let last = full.entries().filter(|(id, _)| heads.contains(id));
    for (id, parents) in entries.chain(last) {
        let generation = full.generation(&id);
        batch.put_state(
            keys::graph_entry(&key.user, &key.id, &id),
            entry_value(&parents, generation),
        );
        in_batch += 1;
        if in_batch == MIGRATE_BATCH {
            write(store, key, &std::mem::take(&mut batch))?;
            in_batch = 0;
        }
    }
    write(store, key, &batch)?;
    tracing::info!(cdvcs = %key, commits = full.len(), "wrote each commit's generation into its graph entry (once)");
    Ok(())
}

fn write(store: &Store, key: &CrdtKey, batch: &WriteBatch) -> Result<(), LoadError> {
    store.write(batch).map_err(|source| LoadError::Store {
        key: key.clone(),
        source: Box::new(source),
    })
}

#[cfg(test)]
#[path = "graph_tests.rs"]
mod tests;
