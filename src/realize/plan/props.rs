//! Property tests of [`plan`] on random commit graphs built through the public `Cdvcs` API
//! (commit, merge, join of replicas). The expected plans come from naive walks over the graph
//! entries, not from `Cdvcs::history`. Case counts are bounded and smaller when `CI` is set.

use std::collections::{BTreeSet, HashMap, HashSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::{ConflictPolicy, plan};
use crate::crdt::{Cdvcs, CrdtKey, Transaction};
use crate::id::Id;

fn cases() -> u32 {
    if std::env::var_os("CI").is_some() {
        24
    } else {
        96
    }
}

/// One step: `kind` picks commit (or merge) on replica `a`, or replica `a` joining replica `b`.
type Step = (u8, u8, u8);

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((any::<u8>(), any::<u8>(), any::<u8>()), 0..60)
}

/// The join of three replicas of one CDVCS after `run`: usually several heads.
fn graph_after(run: &[Step]) -> Cdvcs {
    let (root, _) = Cdvcs::new(&CrdtKey::new("plan", Uuid::nil()));
    let mut replicas = vec![root; 3];
    for (clock, &(kind, a, b)) in run.iter().enumerate() {
        let (a, b) = (usize::from(a) % 3, usize::from(b) % 3);
        let s = &mut replicas[a];
        match kind % 4 {
            0 | 1 if s.heads().len() == 1 => {
                let tx = Transaction {
                    op: "add".into(),
                    params: Id::of(&clock.to_le_bytes()),
                };
                s.commit(&format!("r{a}"), clock as i64, vec![tx])
                    .expect("one head commits");
            }
            0 | 1 => {
                let heads: Vec<Id> = s.heads().iter().copied().collect();
                s.merge(&heads, &format!("r{a}"), clock as i64, Vec::new())
                    .expect("several heads merge");
            }
            2 => {
                let op = replicas[b].to_op();
                replicas[a].downstream(&op).expect("a whole state joins");
            }
            _ => {}
        }
    }
    let mut all = replicas[0].clone();
    for r in &replicas[1..] {
        all.downstream(&r.to_op()).expect("a whole state joins");
    }
    all
}

fn graph_of(s: &Cdvcs) -> HashMap<Id, Vec<Id>> {
    s.entries().collect()
}

fn ancestors_or_self(g: &HashMap<Id, Vec<Id>>, from: &[Id]) -> HashSet<Id> {
    let mut seen: HashSet<Id> = from.iter().copied().collect();
    let mut todo = from.to_vec();
    while let Some(c) = todo.pop() {
        for p in &g[&c] {
            if seen.insert(*p) {
                todo.push(*p);
            }
        }
    }
    seen
}

/// History as DESIGN §5 defines it: depth-first, parents in order, each commit once.
fn naive_history(g: &HashMap<Id, Vec<Id>>, head: Id) -> Vec<Id> {
    fn visit(g: &HashMap<Id, Vec<Id>>, c: Id, seen: &mut HashSet<Id>, out: &mut Vec<Id>) {
        seen.insert(c);
        for p in &g[&c] {
            if !seen.contains(p) {
                visit(g, *p, seen, out);
            }
        }
        out.push(c);
    }
    let mut out = Vec::new();
    visit(g, head, &mut HashSet::new(), &mut out);
    out
}

/// An applied set as a realizer holds one: closed under ancestry, without roots (a root has
/// no transactions and is never applied). `picks` choose the commits it reaches up to.
fn applied_set(g: &HashMap<Id, Vec<Id>>, picks: &[u16]) -> HashSet<Id> {
    let ids: Vec<Id> = g
        .keys()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let chosen: Vec<Id> = picks
        .iter()
        .map(|k| ids[usize::from(*k) % ids.len()])
        .collect();
    let mut applied = ancestors_or_self(g, &chosen);
    applied.retain(|c| !g[c].is_empty());
    applied
}

/// `ids` without the applied commits and the roots, order kept.
fn unapplied(g: &HashMap<Id, Vec<Id>>, applied: &HashSet<Id>, ids: Vec<Id>) -> Vec<Id> {
    let keep = |c: &Id| !applied.contains(c) && !g[c].is_empty();
    ids.into_iter().filter(keep).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn wait_plans_only_commits_every_head_descends_from(
        run in steps(), picks in prop::collection::vec(any::<u16>(), 0..4),
    ) {
        let s = graph_after(&run);
        let g = graph_of(&s);
        let applied = applied_set(&g, &picks);
        let heads: Vec<Id> = s.heads().iter().copied().collect();
        let (todo, waiting) = plan(&s, &applied, ConflictPolicy::Wait);
        if heads.len() > 1 {
            prop_assert_eq!(waiting, Some(heads.clone()));
            for c in &todo {
                for h in &heads {
                    prop_assert!(
                        ancestors_or_self(&g, &[*h]).contains(c),
                        "{} is planned but head {} does not descend from it", c, h
                    );
                }
            }
        } else {
            prop_assert_eq!(waiting, None);
        }
        // Exactly the unapplied common ancestors, in the first head's history order.
        let common = heads.iter().fold(None, |acc: Option<HashSet<Id>>, h| {
            let mine = ancestors_or_self(&g, &[*h]);
            Some(acc.map_or(mine.clone(), |a| a.intersection(&mine).copied().collect()))
        });
        let expected: Vec<Id> = match (heads.first(), common) {
            (Some(first), Some(common)) => unapplied(&g, &applied, naive_history(&g, *first))
                .into_iter()
                .filter(|c| common.contains(c))
                .collect(),
            _ => Vec::new(),
        };
        prop_assert_eq!(todo, expected);
    }

    #[test]
    fn union_plans_each_unapplied_commit_once_parents_first_deterministically(
        run in steps(), picks in prop::collection::vec(any::<u16>(), 0..4),
    ) {
        let s = graph_after(&run);
        let g = graph_of(&s);
        let applied = applied_set(&g, &picks);
        let (todo, waiting) = plan(&s, &applied, ConflictPolicy::Union);
        prop_assert_eq!(waiting, None);
        let planned: HashSet<Id> = todo.iter().copied().collect();
        prop_assert_eq!(planned.len(), todo.len(), "a commit is planned twice");
        let every: Vec<Id> = g.keys().copied().collect();
        let expected: HashSet<Id> = unapplied(&g, &applied, every).into_iter().collect();
        prop_assert_eq!(&planned, &expected);
        for (k, c) in todo.iter().enumerate() {
            for p in &g[c] {
                prop_assert!(
                    !planned.contains(p) || todo[..k].contains(p),
                    "{} is planned before its parent {}", c, p
                );
            }
        }
        // Deterministic: the same plan again, and from the same graph rebuilt in another order.
        prop_assert_eq!(&plan(&s, &applied, ConflictPolicy::Union).0, &todo);
        let mut entries: Vec<(Id, Vec<Id>)> = s.entries().collect();
        entries.reverse();
        let rebuilt = Cdvcs::restore(entries, s.heads().iter().copied().collect())
            .expect("a state's own entries restore");
        prop_assert_eq!(&plan(&rebuilt, &applied, ConflictPolicy::Union).0, &todo);
    }

    #[test]
    fn after_a_merge_wait_plans_the_merge_history_in_order(
        run in steps(), picks in prop::collection::vec(any::<u16>(), 0..4),
    ) {
        let mut s = graph_after(&run);
        let heads: Vec<Id> = s.heads().iter().copied().collect();
        if heads.len() > 1 {
            s.merge(&heads, "merger", 0, Vec::new()).expect("the current heads merge");
        }
        let g = graph_of(&s);
        let applied = applied_set(&g, &picks);
        let [head] = s.heads().iter().copied().collect::<Vec<_>>()[..] else {
            panic!("one head after the merge");
        };
        let expected = unapplied(&g, &applied, naive_history(&g, head));
        prop_assert_eq!(plan(&s, &applied, ConflictPolicy::Wait), (expected.clone(), None));
        prop_assert_eq!(plan(&s, &applied, ConflictPolicy::Union), (expected, None));
    }
}
