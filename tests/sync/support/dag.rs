//! A small in-memory replica: per CRDT a commit DAG implementing `GraphView`, plus a value
//! space. Applying a batch enforces the store invariants (parents and values present).

use std::collections::{BTreeSet, HashMap};

use replikativ::Id;
use replikativ::crdt::{Commit, CrdtKey, Transaction};
use replikativ::identity::{Keypair, PublicKey};
use replikativ::sync::ancestry::{self, Node};
use replikativ::sync::{GraphView, Graphs, OutgoingCommit, VerifiedBatch};
use uuid::Uuid;

/// One CRDT's commit graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dag {
    pub nodes: HashMap<Id, (Vec<Id>, u64, Vec<u8>)>,
    pub heads: BTreeSet<Id>,
}

impl Dag {
    /// An empty replica: the deterministic root only.
    pub fn new(crdt: &CrdtKey) -> Dag {
        let root = Commit::root(crdt);
        Dag {
            nodes: HashMap::from([(root.id, (Vec::new(), 0, root.bytes))]),
            heads: BTreeSet::from([root.id]),
        }
    }

    fn node(&self, id: &Id) -> Option<Node> {
        self.nodes.get(id).map(|(parents, height, _)| Node {
            parents: parents.clone(),
            height: *height,
        })
    }

    /// Inserts a commit whose parents are present.
    pub fn insert(&mut self, id: Id, parents: Vec<Id>, bytes: Vec<u8>) {
        if self.nodes.contains_key(&id) {
            return;
        }
        let height = parents
            .iter()
            .map(|p| self.nodes.get(p).expect("parent present").1 + 1)
            .max()
            .unwrap_or(0);
        for p in &parents {
            self.heads.remove(p);
        }
        self.heads.insert(id);
        self.nodes.insert(id, (parents, height, bytes));
    }
}

impl GraphView for Dag {
    fn contains(&self, id: &Id) -> bool {
        self.nodes.contains_key(id)
    }
    fn heads(&self) -> Vec<Id> {
        self.heads.iter().copied().collect()
    }
    fn commits_between(&self, their_known: &[Id], ours: &[Id]) -> Vec<Id> {
        ancestry::commits_between(&|id| self.node(id), their_known, ours)
    }
    fn ancestry_sample(&self, from: &[Id], exclude: &[Id], max: usize) -> Vec<Id> {
        ancestry::ancestry_sample(&|id| self.node(id), from, exclude, max)
    }
}

/// One node: CRDT graphs, values and per-peer hints.
#[derive(Clone, Debug)]
pub struct Replica {
    pub peer: Uuid,
    pub crdts: HashMap<CrdtKey, Dag>,
    pub values: HashMap<Id, Vec<u8>>,
    pub hints: HashMap<(PublicKey, CrdtKey), Vec<Id>>,
    pub subscriptions: Vec<CrdtKey>,
}

impl Graphs for Replica {
    fn graph(&self, crdt: &CrdtKey) -> Option<&dyn GraphView> {
        self.crdts.get(crdt).map(|d| d as &dyn GraphView)
    }
    fn known_heads_hint(&self, peer: &PublicKey, crdt: &CrdtKey) -> Vec<Id> {
        self.hints
            .get(&(*peer, crdt.clone()))
            .cloned()
            .unwrap_or_default()
    }
}

impl Replica {
    pub fn new(peer: Uuid, subscriptions: Vec<CrdtKey>) -> Replica {
        let crdts = subscriptions
            .iter()
            .map(|c| (c.clone(), Dag::new(c)))
            .collect();
        Replica {
            peer,
            crdts,
            values: HashMap::new(),
            hints: HashMap::new(),
            subscriptions,
        }
    }

    /// The replica's node key, derived from its id (a new id is a new key).
    pub fn key(&self) -> Keypair {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(self.peer.as_bytes());
        Keypair::from_seed(seed)
    }

    pub fn ensure(&mut self, crdt: &CrdtKey) {
        self.crdts
            .entry(crdt.clone())
            .or_insert_with(|| Dag::new(crdt));
    }

    /// A local commit on top of all current heads (merging them) with `params` as values.
    pub fn commit(&mut self, crdt: &CrdtKey, params: &[Vec<u8>], ts: i64) -> Id {
        self.ensure(crdt);
        let dag = self.crdts.get_mut(crdt).expect("ensured");
        let mut transactions = Vec::new();
        for p in params {
            let id = Id::of(p);
            self.values.insert(id, p.clone());
            transactions.push(Transaction {
                op: "add".into(),
                params: id,
            });
        }
        let parents = dag.heads();
        let enc = Commit {
            parents: parents.clone(),
            transactions,
            author: self.peer.to_string(),
            ts,
        }
        .encode();
        dag.insert(enc.id, parents, enc.bytes);
        enc.id
    }

    /// Applies a verified batch atomically, refusing it if a referenced value is missing.
    pub fn apply(&mut self, crdt: &CrdtKey, batch: VerifiedBatch) -> Result<(), String> {
        for id in &batch.values_to_check {
            if !self.values.contains_key(id) {
                return Err(format!("value {id} missing"));
            }
        }
        let dag = self.crdts.get_mut(crdt).ok_or("no replica")?;
        for value in batch.values {
            let (id, bytes) = value.into_parts();
            assert_eq!(Id::of(&bytes), id, "session passed an unverified value");
            self.values.insert(id, bytes);
        }
        for c in batch.commits {
            assert_eq!(
                Id::of(&c.bytes),
                c.id,
                "session passed an unverified commit"
            );
            for p in &c.commit.parents {
                assert!(dag.contains(p), "session passed an orphan commit");
            }
            dag.insert(c.id, c.commit.parents, c.bytes);
        }
        Ok(())
    }

    /// Loads commits with their values for sending.
    pub fn load(&self, crdt: &CrdtKey, ids: &[Id]) -> Vec<OutgoingCommit> {
        ids.iter()
            .map(|id| self.load_one(crdt, id).expect("own commit"))
            .collect()
    }

    /// Loads one commit with its values for sending.
    pub fn load_one(&self, crdt: &CrdtKey, id: &Id) -> Result<OutgoingCommit, String> {
        let dag = self.crdts.get(crdt).ok_or("no such crdt")?;
        let bytes = dag.nodes.get(id).ok_or("no such commit")?.2.clone();
        let commit = Commit::decode(&bytes).map_err(|e| e.to_string())?.commit;
        let values = commit
            .transactions
            .iter()
            .filter_map(|t| self.values.get(&t.params).map(|v| (t.params, v.clone())))
            .collect();
        Ok(OutgoingCommit {
            id: *id,
            bytes,
            values,
            packs: Vec::new(),
            signature: None,
        })
    }

    /// Every commit's values are present (the store invariant).
    pub fn check_invariants(&self) {
        for dag in self.crdts.values() {
            for (id, (parents, _, bytes)) in &dag.nodes {
                assert_eq!(Id::of(bytes), *id);
                for p in parents {
                    assert!(dag.contains(p));
                }
                let c = Commit::decode(bytes).expect("decodes").commit;
                if c.parents.is_empty() {
                    continue; // the root's params are implicit
                }
                for t in c.transactions {
                    assert!(self.values.contains_key(&t.params), "value missing");
                }
            }
        }
    }
}
