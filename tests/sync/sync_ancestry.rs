//! The generic graph walks behind `GraphView` agree with brute-force set arithmetic on random
//! DAGs.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use replikativ::Id;
use replikativ::sync::ancestry::{Node, ancestry_sample, commits_between};

struct Graph {
    nodes: HashMap<Id, Node>,
    ids: Vec<Id>,
}

/// A random DAG: node i picks 1–2 parents among earlier nodes (node 0 is the root).
fn graph(choices: &[(usize, usize, bool)]) -> Graph {
    let mut nodes = HashMap::new();
    let mut ids = Vec::new();
    for (i, &(a, b, two)) in choices.iter().enumerate() {
        let id = Id::of(&(i as u64).to_le_bytes());
        let mut parents = Vec::new();
        if i > 0 {
            parents.push(ids[a % i]);
            if two && ids[b % i] != ids[a % i] {
                parents.push(ids[b % i]);
            }
        }
        let height = parents
            .iter()
            .map(|p: &Id| nodes.get(p).map(|n: &Node| n.height + 1).unwrap_or(0))
            .max()
            .unwrap_or(0);
        nodes.insert(id, Node { parents, height });
        ids.push(id);
    }
    Graph { nodes, ids }
}

fn ancestors(g: &Graph, from: &[Id]) -> HashSet<Id> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Id> = from
        .iter()
        .filter(|i| g.nodes.contains_key(i))
        .copied()
        .collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            stack.extend(g.nodes[&id].parents.iter().copied());
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if std::env::var_os("CI").is_some() { 64 } else { 256 }))]

    #[test]
    fn commits_between_is_the_set_difference_in_parents_first_order(
        choices in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 1..60),
        theirs in proptest::collection::vec(any::<usize>(), 0..4),
        ours in proptest::collection::vec(any::<usize>(), 1..4),
    ) {
        let g = graph(&choices);
        let pick = |v: &[usize]| v.iter().map(|i| g.ids[i % g.ids.len()]).collect::<Vec<_>>();
        let (mut theirs, ours) = (pick(&theirs), pick(&ours));
        theirs.push(Id::of(b"unknown ids are ignored"));
        let lookup = |id: &Id| g.nodes.get(id).cloned();
        let got = commits_between(&lookup, &theirs, &ours);
        let expected: HashSet<Id> = ancestors(&g, &ours).difference(&ancestors(&g, &theirs)).copied().collect();
        prop_assert_eq!(got.iter().copied().collect::<HashSet<_>>(), expected);
        prop_assert_eq!(got.len(), got.iter().collect::<HashSet<_>>().len());
        let position: HashMap<Id, usize> = got.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for id in &got {
            for p in &g.nodes[id].parents {
                if let Some(pp) = position.get(p) {
                    prop_assert!(*pp < position[id], "parent after child");
                }
            }
        }
    }

    #[test]
    fn ancestry_samples_stay_in_the_region_and_within_the_bound(
        choices in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<bool>()), 1..200),
        exclude in proptest::collection::vec(any::<usize>(), 0..3),
        max in 1usize..20,
    ) {
        let g = graph(&choices);
        let head = *g.ids.last().expect("non-empty");
        let exclude: Vec<Id> = exclude.iter().map(|i| g.ids[i % g.ids.len()]).collect();
        let lookup = |id: &Id| g.nodes.get(id).cloned();
        let sample = ancestry_sample(&lookup, &[head], &exclude, max);
        let region: HashSet<Id> = ancestors(&g, &[head]).difference(&ancestors(&g, &exclude)).copied().collect();
        prop_assert!(sample.len() <= max);
        prop_assert!(sample.iter().all(|id| region.contains(id)));
        prop_assert_eq!(sample.is_empty(), region.is_empty());
        if !region.is_empty() {
            prop_assert_eq!(sample[0], head);
        }
        // Exponential spacing: a region of size n yields about log2(n) + 2 samples.
        let bound = 2 + (usize::BITS - region.len().leading_zeros()) as usize;
        prop_assert!(sample.len() <= bound, "{} samples for a region of {}", sample.len(), region.len());
    }
}
