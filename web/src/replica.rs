//! The browser's replica of one CDVCS: what it holds (graph, values, tweets), how a batch is
//! judged before it is kept, and the record it is kept as.
//!
//! A batch the sync session verified (every hash) is checked as a node's replica checks one
//! (DESIGN §11): every commit's signature against its author and, in an owned CDVCS, its
//! author's right to write, judged from its ancestors by the core's [`Writers`]; params not
//! carried must be held. A good batch becomes a [`Pending`]: its record (the batch as
//! protocol frames, content exactly as received) goes to IndexedDB first, and only once it is
//! durable is it applied here (durable before visible). On a reload the records are read
//! back in order and verified again from their bytes: hashes, signatures, writer rules.

use std::collections::{HashMap, HashSet};

use replikativ_core::crdt::authorship::{
    AuthorKeys, Refusal, RuleError, Writers, authorship, owner_of,
};
use replikativ_core::crdt::{Cdvcs, CdvcsError, CdvcsOp, Commit, CrdtKey, EncodedCommit};
use replikativ_core::id::{Id, Verified};
use replikativ_core::pack;
use replikativ_core::params::decode_params;
use replikativ_core::protocol::{Blob, ByteBuf, Codec, FixedBytes, Message, Received, WirePack};
use replikativ_core::sync::{SyncError, VerifiedBatch, verify_stored};

use crate::tweets::{ADD_NOTE, ADD_TWEET, Tweets};

/// Why a batch or a record is not kept.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// A commit's signature or its author's right to write (DESIGN §11).
    #[error("commit refused: {0}")]
    Refused(#[from] Refusal),
    /// The writer rule could not decide (it keeps its records in memory here, so this
    /// cannot happen, but the rule's type allows it).
    #[error("the writer rule could not decide: {0}")]
    Rule(RuleError),
    /// A param neither carried nor held.
    #[error("commit {commit} needs value {value}, which was neither sent nor is held")]
    MissingValue {
        /// The commit.
        commit: Id,
        /// The value.
        value: Id,
    },
    /// A record read back is damaged or was tampered with.
    #[error("stored record {index} is damaged: {why}")]
    Damaged {
        /// Which record, in order.
        index: usize,
        /// What is wrong.
        why: String,
    },
    /// A record read back fails verification.
    #[error("stored record {index} fails verification at {id}: {reason}")]
    Unverified {
        /// Which record, in order.
        index: usize,
        /// The offending id.
        id: Id,
        /// What was wrong.
        reason: Box<SyncError>,
    },
    /// The batch's commits do not join the graph (a parent neither held nor earlier).
    #[error("the batch does not join the graph: {0}")]
    Graph(#[from] CdvcsError),
    /// A pack that verified on receipt does not decode (cannot happen for a verified pack).
    #[error("pack {0} does not decode")]
    Pack(Id),
}

/// A checked batch waiting to be durable: its record and what applying it adds.
#[derive(Debug)]
pub struct Pending {
    /// The record to keep: the batch's protocol frames in one MessagePack array.
    pub record: Vec<u8>,
    commits: Vec<(Id, Commit)>,
    values: HashMap<Id, Vec<u8>>,
}

impl Pending {
    /// How many commits applying it adds.
    pub fn commits(&self) -> usize {
        self.commits.len()
    }
}

/// One transaction applied, as the page gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// Its commit's id (hex).
    pub commit: String,
    /// Its commit's author (`ed25519:…`, or a legacy name).
    pub author: String,
    /// The op name.
    pub op: String,
    /// The params bytes; `None` when the same value arrived before (it is not kept twice).
    pub params: Option<Vec<u8>>,
}

impl Applied {
    /// As JSON for the page: `{"commit","author","op","params"}`, the params decoded as the
    /// realizer decodes them (`null` when not sent again, or no JSON value).
    pub fn to_json(&self) -> serde_json::Value {
        let params = self.params.as_deref().and_then(|b| decode_params(b).ok());
        serde_json::json!({
            "commit": self.commit,
            "author": self.author,
            "op": self.op,
            "params": params,
        })
    }
}

/// One CDVCS held in the browser.
#[derive(Debug)]
pub struct Replica {
    key: CrdtKey,
    graph: Cdvcs,
    writers: Option<Writers>,
    author_keys: AuthorKeys,
    values: HashSet<Id>,
    tweets: Tweets,
    records: usize,
}

impl Replica {
    /// An empty replica of `key`: its deterministic root only.
    pub fn new(key: CrdtKey) -> Replica {
        let (graph, root) = Cdvcs::new(&key);
        // The writer rule judges every commit after its parents, the root first.
        let writers = owner_of(&key).map(|_| {
            let mut rule = Writers::new(&key);
            // The deterministic root is always judged `Nobody` and accepted; were it not,
            // every commit would be refused (its parent unjudged), never let through.
            if let Ok(who) = authorship(&key, &root.id, &root.commit, None) {
                rule.judge(&root.id, &root.commit, who).ok();
            }
            rule
        });
        Replica {
            graph,
            writers,
            author_keys: AuthorKeys::default(),
            values: HashSet::new(),
            tweets: Tweets::default(),
            records: 0,
            key,
        }
    }

    /// Which CDVCS.
    pub fn key(&self) -> &CrdtKey {
        &self.key
    }

    /// The commit graph.
    pub fn graph(&self) -> &Cdvcs {
        &self.graph
    }

    /// The tweets applied.
    pub fn tweets(&self) -> &Tweets {
        &self.tweets
    }

    /// Records applied (batches kept).
    pub fn records(&self) -> usize {
        self.records
    }

    /// Checks a verified batch: signatures, writer rules, params held. The writer rule learns
    /// the batch's commits, so the next batch (their children) may be checked before this one
    /// is durable.
    pub fn check(&mut self, batch: VerifiedBatch) -> Result<Pending, ReplicaError> {
        let record = record_of(&self.key, &batch);
        let fresh: Vec<&EncodedCommit> = batch
            .commits
            .iter()
            .filter(|c| !self.graph.contains(&c.id))
            .collect();
        let mut carried: HashMap<Id, Vec<u8>> = batch
            .values
            .iter()
            .map(|v| (v.id(), v.bytes().to_vec()))
            .collect();
        for p in &batch.packs {
            let values = pack::decode_joined(p.bytes(), pack::MAX_PACK_BYTES)
                .map_err(|_| ReplicaError::Pack(p.id()))?;
            for (id, bytes) in p.ids().iter().zip(values.iter()) {
                carried.insert(*id, bytes.to_vec());
            }
        }
        for value in &batch.values_to_check {
            if !self.values.contains(value) && !carried.contains_key(value) {
                let commit = fresh
                    .iter()
                    .find(|c| c.commit.transactions.iter().any(|t| t.params == *value))
                    .map_or(Id::of(b""), |c| c.id);
                return Err(ReplicaError::MissingValue {
                    commit,
                    value: *value,
                });
            }
        }
        self.author_keys
            .learn(fresh.iter().map(|c| c.commit.author.as_str()));
        for c in &fresh {
            let who =
                self.author_keys
                    .authorship(&self.key, &c.id, &c.commit, c.signature.as_ref())?;
            if let Some(rule) = self.writers.as_mut() {
                rule.judge(&c.id, &c.commit, who).map_err(|e| match e {
                    RuleError::Refused(r) => ReplicaError::Refused(r),
                    other => ReplicaError::Rule(other),
                })?;
            }
        }
        Ok(Pending {
            record,
            commits: fresh.iter().map(|c| (c.id, c.commit.clone())).collect(),
            values: carried,
        })
    }

    /// Applies a batch that is now durable: its commits join the graph (parents first, as
    /// checked) and its tweets the list.
    pub fn apply(&mut self, pending: Pending) -> Result<Vec<Applied>, ReplicaError> {
        let mut op = CdvcsOp {
            graph: pending
                .commits
                .iter()
                .map(|(id, c)| (*id, c.parents.clone()))
                .collect(),
            heads: Vec::new(),
        };
        op.heads = self.graph.heads_after(&op);
        // Parents were checked by the session (or by `restore`): present or earlier; a batch
        // that still fails changes nothing.
        let added: std::collections::HashSet<Id> =
            self.graph.downstream(&op)?.into_iter().collect();
        let mut applied = Vec::new();
        for (id, commit) in pending.commits.iter().filter(|(id, _)| added.contains(id)) {
            let id = *id;
            for tx in &commit.transactions {
                let params = pending.values.get(&tx.params);
                if !self.values.contains(&tx.params)
                    && let Some(bytes) = params
                {
                    match tx.op.as_str() {
                        ADD_TWEET => self.tweets.add_params(bytes),
                        ADD_NOTE => self.tweets.add_note(bytes, &tx.params.to_hex()),
                        _ => {}
                    }
                }
                applied.push(Applied {
                    commit: id.to_hex(),
                    author: commit.author.clone(),
                    op: tx.op.clone(),
                    params: params.cloned(),
                });
                if pending.values.contains_key(&tx.params) {
                    self.values.insert(tx.params);
                }
            }
        }
        self.records += 1;
        Ok(applied)
    }

    /// Reads back record number `index` (in the order they were kept), verifies it from its
    /// bytes as if it had just arrived, and applies it.
    pub fn restore(&mut self, index: usize, record: &[u8]) -> Result<Vec<Applied>, ReplicaError> {
        let damaged = |why: String| ReplicaError::Damaged { index, why };
        let frames: Vec<ByteBuf> =
            rmp_serde::from_slice(record).map_err(|e| damaged(e.to_string()))?;
        let codec = Codec::default();
        let (mut commits, mut signatures, mut values, mut packs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for frame in frames {
            match codec
                .receive(&frame.0)
                .map_err(|e| damaged(e.to_string()))?
            {
                Received::Values { crdt, values: v } if crdt == self.key => values.extend(v),
                Received::Packs { crdt, packs: p } if crdt == self.key => packs.extend(p),
                Received::Commits {
                    crdt,
                    commits: c,
                    signatures: s,
                } if crdt == self.key => {
                    let n = c.len();
                    commits.extend(c);
                    let mut s: Vec<_> = s.into_iter().map(|s| s.map(|s| s.0)).collect();
                    s.resize(n, None);
                    signatures.extend(s);
                }
                other => return Err(damaged(format!("unexpected {}", other.kind()))),
            }
        }
        let batch = verify_stored(commits, &signatures, values, packs, &self.graph).map_err(
            |(id, reason)| ReplicaError::Unverified {
                index,
                id,
                reason: Box::new(reason),
            },
        )?;
        let pending = self.check(batch)?;
        self.apply(pending)
    }
}

/// The record of a batch: its content as protocol frames (values, packs, commits with their
/// signatures), the bytes exactly as received, in one MessagePack array.
fn record_of(key: &CrdtKey, batch: &VerifiedBatch) -> Vec<u8> {
    let blob = |v: &Verified| Blob {
        id: v.id(),
        bytes: ByteBuf(v.bytes().to_vec()),
    };
    let mut messages = Vec::new();
    if !batch.values.is_empty() {
        messages.push(Message::Values {
            crdt: key.clone(),
            values: batch.values.iter().map(blob).collect(),
        });
    }
    if !batch.packs.is_empty() {
        messages.push(Message::Packs {
            crdt: key.clone(),
            packs: batch.packs.iter().cloned().map(WirePack::from).collect(),
        });
    }
    let signed = batch.commits.iter().any(|c| c.signature.is_some());
    messages.push(Message::Commits {
        crdt: key.clone(),
        commits: batch
            .commits
            .iter()
            .map(|c| Blob {
                id: c.id,
                bytes: ByteBuf(c.bytes.clone()),
            })
            .collect(),
        signatures: if signed {
            batch
                .commits
                .iter()
                .map(|c| c.signature.map(FixedBytes))
                .collect()
        } else {
            Vec::new()
        },
    });
    let codec = Codec::default();
    let frames: Vec<ByteBuf> = messages
        .iter()
        // Re-encoding what was decoded within the same limits cannot exceed them.
        .filter_map(|m| codec.encode(m).ok().map(ByteBuf))
        .collect();
    rmp_serde::to_vec(&frames).unwrap_or_default()
}

#[cfg(test)]
mod tests;
