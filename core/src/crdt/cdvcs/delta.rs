//! Helpers the replication layer uses for delta sync (DESIGN §6): build an op for chosen
//! commits and sample a head's ancestry for have/want negotiation.

use crate::id::Id;

use super::{Cdvcs, CdvcsOp};

impl Cdvcs {
    /// An op carrying the entries of `ids` (those this state has; others are skipped),
    /// ordered by `(generation, id)` so parents come before children, and our heads.
    pub fn op_for(&self, ids: &[Id]) -> CdvcsOp {
        let g = &self.graph;
        let mut idx: Vec<u32> = ids.iter().filter_map(|id| g.idx(id)).collect();
        idx.sort_by_key(|&i| (g.generation(i), g.id(i)));
        idx.dedup();
        CdvcsOp {
            graph: idx
                .into_iter()
                .map(|i| (g.id(i), g.parent_ids(i)))
                .collect(),
            heads: self.heads.iter().copied().collect(),
        }
    }

    /// Up to `max` ancestors of `head` along first parents at distances 1, 2, 4, 8, ...; when
    /// the chain ends before the next distance, its root closes the sample (a root is a common
    /// point of every replica of one CDVCS). Empty when `head` is unknown. Walks
    /// O(distance of the last sample) first-parent links.
    pub fn ancestry_sample(&self, head: &Id, max: usize) -> Vec<Id> {
        let g = &self.graph;
        let mut out = Vec::new();
        let Some(mut cur) = g.idx(head) else {
            return out;
        };
        let mut distance: u64 = 0;
        let mut next_sample: u64 = 1;
        while out.len() < max {
            let Some(&parent) = g.parents_of(cur).first() else {
                if distance > 0 && out.last() != Some(&g.id(cur)) {
                    out.push(g.id(cur));
                }
                break;
            };
            cur = parent;
            distance += 1;
            if distance == next_sample {
                out.push(g.id(cur));
                next_sample = next_sample.saturating_mul(2);
            }
        }
        out
    }
}
