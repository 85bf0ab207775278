//! Generic graph walks for implementing [`GraphView`](super::GraphView) over any DAG whose
//! commits know their parents and their height (root 0, otherwise 1 + the highest parent).
//!
//! Both walks visit commits in decreasing height, so they touch only the region between the
//! two frontiers (plus the band where the frontiers meet), never the whole history when the
//! sides are close.

use std::collections::{BTreeMap, HashMap};

use crate::id::Id;

/// What a walk needs to know about one commit.
#[derive(Clone, Debug)]
pub struct Node {
    /// Its parents.
    pub parents: Vec<Id>,
    /// 0 for a root, else 1 + the maximum of the parents' heights.
    pub height: u64,
}

const THEIRS: u8 = 1;
const OURS: u8 = 2;

/// Paints ancestors of `theirs` and `ours` in decreasing height; calls `visit` for every
/// commit reachable from `ours` and not from `theirs`, highest first.
fn paint(
    lookup: &dyn Fn(&Id) -> Option<Node>,
    theirs: &[Id],
    ours: &[Id],
    mut visit: impl FnMut(&Id, &Node) -> bool,
) {
    // Queue keyed by (height, id) so equal heights pop deterministically.
    let mut queue: BTreeMap<(u64, Id), (u8, Node)> = BTreeMap::new();
    let mut ours_pending = 0usize;
    let mut paint_of: HashMap<Id, u8> = HashMap::new();
    let mut push = |queue: &mut BTreeMap<(u64, Id), (u8, Node)>,
                    ours_pending: &mut usize,
                    id: &Id,
                    flag: u8| {
        let Some(node) = lookup(id) else { return };
        let old = paint_of.get(id).copied().unwrap_or(0);
        let new = old | flag;
        if new == old {
            return;
        }
        paint_of.insert(*id, new);
        let key = (node.height, *id);
        if old == OURS {
            *ours_pending = ours_pending.saturating_sub(1);
        }
        if new == OURS {
            *ours_pending += 1;
        }
        queue.insert(key, (new, node));
    };
    for id in theirs {
        push(&mut queue, &mut ours_pending, id, THEIRS);
    }
    for id in ours {
        push(&mut queue, &mut ours_pending, id, OURS);
    }
    while ours_pending > 0 {
        let Some(((_, id), (flag, node))) = queue.pop_last() else {
            break;
        };
        if flag == OURS {
            ours_pending -= 1;
            if !visit(&id, &node) {
                return;
            }
        }
        for p in &node.parents {
            push(&mut queue, &mut ours_pending, p, flag);
        }
    }
}

/// Commits reachable from `ours` and not from `their_known`, parents before children.
/// Unknown ids in either list are ignored.
pub fn commits_between(
    lookup: &dyn Fn(&Id) -> Option<Node>,
    their_known: &[Id],
    ours: &[Id],
) -> Vec<Id> {
    let mut out: Vec<(u64, Id)> = Vec::new();
    paint(lookup, their_known, ours, |id, node| {
        out.push((node.height, *id));
        true
    });
    // Heights strictly increase from parent to child, so ascending height is a topological
    // order.
    out.sort();
    out.into_iter().map(|(_, id)| id).collect()
}

/// Up to `max` ids reachable from `from` and not from `exclude`, at exponentially growing
/// distances (0, 1, 2, 4, …) in the walk order, ending with the oldest one reached.
pub fn ancestry_sample(
    lookup: &dyn Fn(&Id) -> Option<Node>,
    from: &[Id],
    exclude: &[Id],
    max: usize,
) -> Vec<Id> {
    if max == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut step = 0u64;
    let mut next = 0u64;
    let mut last = None;
    paint(lookup, exclude, from, |id, _| {
        last = Some(*id);
        if step == next {
            out.push(*id);
            next = if next == 0 { 1 } else { next * 2 };
            last = None;
        }
        step += 1;
        // Keep one slot for the oldest commit.
        out.len() + 1 < max
    });
    if let Some(oldest) = last {
        out.push(oldest);
    }
    out
}
