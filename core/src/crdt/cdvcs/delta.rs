//! Helpers the replication layer uses for delta sync (DESIGN §6): build an op for chosen
//! commits and sample a head's ancestry for have/want negotiation.

use std::collections::BTreeSet;

use crate::id::Id;

use super::graph::FastMap;
use super::{Cdvcs, CdvcsOp};

impl Cdvcs {
    /// An op carrying the entries of `ids` (those this state has; others are skipped, as are
    /// those a failing source cannot answer), ordered by `(generation, id)` so parents come
    /// before children, and our heads.
    pub fn op_for(&self, ids: &[Id]) -> CdvcsOp {
        let g = &self.graph;
        let mut found: Vec<(u64, Id, Vec<Id>)> = ids
            .iter()
            .filter_map(|id| g.get(id).map(|e| (e.generation, *id, e.parents)))
            .collect();
        found.sort();
        found.dedup_by(|a, b| a.1 == b.1);
        CdvcsOp {
            graph: found.into_iter().map(|(_, id, ps)| (id, ps)).collect(),
            heads: self.heads.iter().copied().collect(),
        }
    }

    /// The heads this state would have after `downstream(op)`, without applying it (to
    /// persist them in the same atomic batch as the op's commits). Assumes `missing(op)` is
    /// empty. O(k · parents + heads).
    pub fn heads_after(&self, op: &CdvcsOp) -> Vec<Id> {
        let referenced: FastMap<Id, ()> = op
            .graph
            .iter()
            .flat_map(|(_, ps)| ps.iter().map(|p| (*p, ())))
            .collect();
        let mut heads: BTreeSet<Id> = self
            .heads
            .iter()
            .filter(|h| !referenced.contains_key(h))
            .copied()
            .collect();
        for (id, _) in &op.graph {
            if !referenced.contains_key(id) && !self.contains(id) {
                heads.insert(*id);
            }
        }
        heads.into_iter().collect()
    }

    /// The commit ids `op` references (as parents or heads) that neither the op nor this state
    /// holds, sorted and without duplicates: what to fetch before `downstream` can accept it.
    pub fn missing(&self, op: &CdvcsOp) -> Vec<Id> {
        let in_op: FastMap<Id, ()> = op.graph.iter().map(|(id, _)| (*id, ())).collect();
        let mut out: BTreeSet<Id> = BTreeSet::new();
        let refs = op.graph.iter().flat_map(|(_, ps)| ps.iter());
        for id in refs.chain(op.heads.iter()) {
            if !in_op.contains_key(id) && !self.contains(id) {
                out.insert(*id);
            }
        }
        out.into_iter().collect()
    }

    /// Up to `max` ancestors of `head` along first parents at distances 1, 2, 4, 8, ...; when
    /// the chain ends before the next distance, its root closes the sample (a root is a common
    /// point of every replica of one CDVCS). Empty when `head` is unknown. Walks
    /// O(distance of the last sample) first-parent links.
    pub fn ancestry_sample(&self, head: &Id, max: usize) -> Vec<Id> {
        let g = &self.graph;
        let mut out = Vec::new();
        let Some(mut entry) = g.get(head) else {
            return out;
        };
        let mut cur = *head;
        let mut distance: u64 = 0;
        let mut next_sample: u64 = 1;
        while out.len() < max {
            let parent = entry.parents.first().copied();
            let next = parent.and_then(|p| g.get(&p).map(|e| (p, e)));
            let Some((parent, parent_entry)) = next else {
                if distance > 0 && out.last() != Some(&cur) {
                    out.push(cur);
                }
                break;
            };
            cur = parent;
            entry = parent_entry;
            distance += 1;
            if distance == next_sample {
                out.push(cur);
                next_sample = next_sample.saturating_mul(2);
            }
        }
        out
    }
}
