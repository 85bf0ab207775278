//! The browser replica's commit graph: each commit's parents and height, and the heads. It
//! answers the sync session's questions ([`GraphView`]) in memory; a browser replica holds
//! one CDVCS of at most some 10^5 commits, so whole-graph walks are cheap here.

use std::collections::{BTreeSet, HashMap, HashSet};

use replikativ_core::id::Id;
use replikativ_core::sync::GraphView;
use replikativ_core::sync::ancestry::{self, Node};

/// One CDVCS's commit graph, from its deterministic root.
#[derive(Debug, Clone)]
pub struct Dag {
    nodes: HashMap<Id, (Vec<Id>, u64)>,
    heads: BTreeSet<Id>,
}

impl Dag {
    /// A graph holding only `root`.
    pub fn new(root: Id) -> Dag {
        Dag {
            nodes: HashMap::from([(root, (Vec::new(), 0))]),
            heads: BTreeSet::from([root]),
        }
    }

    /// How many commits it holds, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether it holds only the root.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// The heads, in id order.
    pub fn heads_list(&self) -> Vec<Id> {
        self.heads.iter().copied().collect()
    }

    /// Adds `id` with `parents`, which must all be held (else nothing changes and the first
    /// missing parent is returned). Adding a held commit changes nothing.
    pub fn insert(&mut self, id: Id, parents: &[Id]) -> Result<(), Id> {
        if self.nodes.contains_key(&id) {
            return Ok(());
        }
        let mut height = 0;
        for p in parents {
            let Some((_, h)) = self.nodes.get(p) else {
                return Err(*p);
            };
            height = height.max(h + 1);
        }
        for p in parents {
            self.heads.remove(p);
        }
        self.heads.insert(id);
        self.nodes.insert(id, (parents.to_vec(), height));
        Ok(())
    }

    /// Every commit reachable from `from` (inclusive) among those held.
    fn ancestors(&self, from: &[Id]) -> HashSet<Id> {
        let mut seen = HashSet::new();
        let mut todo: Vec<Id> = from
            .iter()
            .filter(|id| self.nodes.contains_key(id))
            .copied()
            .collect();
        while let Some(id) = todo.pop() {
            if seen.insert(id)
                && let Some((parents, _)) = self.nodes.get(&id)
            {
                todo.extend(parents.iter().copied());
            }
        }
        seen
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
        let known = self.ancestors(their_known);
        let mut out: Vec<(u64, Id)> = self
            .ancestors(ours)
            .into_iter()
            .filter(|id| !known.contains(id))
            .map(|id| (self.nodes.get(&id).map_or(0, |n| n.1), id))
            .collect();
        // Parents before children: a parent's height is below its child's.
        out.sort_unstable();
        out.into_iter().map(|(_, id)| id).collect()
    }

    fn ancestry_sample(&self, from: &[Id], exclude: &[Id], max: usize) -> Vec<Id> {
        let lookup = |id: &Id| {
            self.nodes.get(id).map(|(parents, height)| Node {
                parents: parents.clone(),
                height: *height,
            })
        };
        ancestry::ancestry_sample(&lookup, from, exclude, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Id {
        Id::of(&[n])
    }

    /// root ← 1 ← 2, root ← 3; then 4 merges 2 and 3.
    fn diamond() -> Dag {
        let mut dag = Dag::new(id(0));
        dag.insert(id(1), &[id(0)]).expect("1");
        dag.insert(id(2), &[id(1)]).expect("2");
        dag.insert(id(3), &[id(0)]).expect("3");
        dag
    }

    #[test]
    fn heads_follow_inserts_and_merges() {
        let mut dag = diamond();
        assert_eq!(dag.heads().len(), 2);
        assert!(dag.heads().contains(&id(2)) && dag.heads().contains(&id(3)));
        dag.insert(id(4), &[id(2), id(3)]).expect("merge");
        assert_eq!(dag.heads(), vec![id(4)]);
        assert_eq!(dag.len(), 5);
    }

    #[test]
    fn a_commit_without_its_parent_is_refused_and_changes_nothing() {
        let mut dag = diamond();
        assert_eq!(dag.insert(id(9), &[id(2), id(8)]), Err(id(8)));
        assert!(!dag.contains(&id(9)));
        assert_eq!(dag.heads().len(), 2);
    }

    #[test]
    fn commits_between_are_what_the_peer_lacks_parents_first() {
        let mut dag = diamond();
        dag.insert(id(4), &[id(2), id(3)]).expect("merge");
        assert_eq!(dag.commits_between(&[id(1)], &[id(4)]), {
            let mut lacking = vec![id(2), id(3)];
            lacking.sort_unstable_by_key(|i| (dag.nodes[i].1, *i));
            lacking.push(id(4));
            lacking
        });
        assert_eq!(dag.commits_between(&[id(4)], &[id(4)]), Vec::<Id>::new());
        let all = dag.commits_between(&[], &[id(4)]);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0], id(0));
        // Unknown ids of the peer are ignored.
        assert_eq!(dag.commits_between(&[id(77)], &[id(1)]), vec![id(0), id(1)]);
    }

    #[test]
    fn the_sample_starts_at_the_heads_and_ends_at_the_oldest() {
        let mut dag = Dag::new(id(0));
        for n in 1..40u8 {
            dag.insert(id(n), &[id(n - 1)]).expect("chain");
        }
        let sample = dag.ancestry_sample(&[id(39)], &[], 64);
        assert_eq!(sample.first(), Some(&id(39)));
        assert_eq!(sample.last(), Some(&id(0)));
        assert!(sample.len() < 40, "exponential steps, not every commit");
    }
}
