//! The realization plan (DESIGN §7): which commits of a CDVCS a realizer applies next, and in
//! what order. Pure: a function of the state, the applied set and the [`ConflictPolicy`].
//!
//! Order is `history(head)`, parents before children, each commit once; root commits carry no
//! transactions and are never planned. With several heads, `Wait` plans only the commits every
//! head descends from (the diverged branches wait for a merge), `Union` plans every branch.

use std::collections::HashSet;

use crate::crdt::Cdvcs;
use crate::id::Id;

/// What to do while the CDVCS has several heads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Apply nothing from the diverged branches until they are merged (default).
    #[default]
    Wait,
    /// Apply every branch's commits in a deterministic order (for commutative ops).
    Union,
}

/// The commits to apply next, in order, and (under `Wait` with several heads) the heads that
/// wait for a merge. With `applied` closed under ancestry, as a realizer's is, the plan is the
/// unapplied non-root commits of: `history(head)` for one head; under `Wait`, those every head
/// descends from, in the first head's history order; under `Union`, the heads' histories in
/// id order, each commit where it first appears. Walks only unapplied commits
/// (`history_since`), so following a growing CDVCS costs O(new commits), not O(history).
pub fn plan(
    state: &Cdvcs,
    applied: &HashSet<Id>,
    policy: ConflictPolicy,
) -> (Vec<Id>, Option<Vec<Id>>) {
    let heads: Vec<Id> = state.heads().iter().copied().collect();
    let hist = |h: &Id| state.history_since(h, applied).unwrap_or_default();
    let keep =
        |ids: Vec<Id>| -> Vec<Id> { ids.into_iter().filter(|id| !is_root(state, id)).collect() };
    match heads.as_slice() {
        [] => (Vec::new(), None),
        [only] => (keep(hist(only)), None),
        [first, rest @ ..] => match policy {
            ConflictPolicy::Wait => {
                let mut common: HashSet<Id> = hist(&rest[0]).into_iter().collect();
                for h in &rest[1..] {
                    let set: HashSet<Id> = hist(h).into_iter().collect();
                    common.retain(|id| set.contains(id));
                }
                let shared: Vec<Id> = hist(first)
                    .into_iter()
                    .filter(|id| common.contains(id))
                    .collect();
                (keep(shared), Some(heads))
            }
            ConflictPolicy::Union => {
                let mut seen = HashSet::new();
                let mut all = Vec::new();
                for h in &heads {
                    for id in hist(h) {
                        if seen.insert(id) {
                            all.push(id);
                        }
                    }
                }
                (keep(all), None)
            }
        },
    }
}

fn is_root(state: &Cdvcs, id: &Id) -> bool {
    state.parents(id).is_some_and(|p| p.is_empty())
}

#[cfg(test)]
mod props;
