//! Unit tests mirroring the original replikativ CDVCS suite (`cdvcs_test.clj`, the LCA cases of
//! `core_test.clj`); the small integer ids there become `n(i)`.

use std::collections::{BTreeSet, HashSet};

use uuid::Uuid;

use super::*;
use crate::crdt::commit::Transaction;

fn n(i: u64) -> Id {
    Id::of(&i.to_le_bytes())
}

fn ids(xs: &[u64]) -> Vec<Id> {
    xs.iter().map(|&x| n(x)).collect()
}

fn set(xs: &[u64]) -> BTreeSet<Id> {
    xs.iter().map(|&x| n(x)).collect()
}

/// A state from `{id: [parents]}` and heads, through the public `restore`.
fn state(graph: &[(u64, &[u64])], heads: &[u64]) -> Cdvcs {
    Cdvcs::restore(graph.iter().map(|(c, ps)| (n(*c), ids(ps))), ids(heads)).expect("restore")
}

fn op(graph: &[(u64, &[u64])], heads: &[u64]) -> CdvcsOp {
    CdvcsOp {
        graph: graph.iter().map(|(c, ps)| (n(*c), ids(ps))).collect(),
        heads: ids(heads),
    }
}

fn tx(name: &str) -> Vec<Transaction> {
    vec![Transaction {
        op: name.into(),
        params: Id::of(name.as_bytes()),
    }]
}

#[test]
fn new_cdvcs_holds_only_the_deterministic_root() {
    let key = CrdtKey::new("mail:author@host.org", Uuid::nil());
    let (s, root) = Cdvcs::new(&key);
    assert_eq!(root, Commit::root(&key));
    assert_eq!(s.len(), 1);
    assert_eq!(s.heads(), &[root.id].into_iter().collect());
    assert_eq!(s.parents(&root.id), Some(vec![]));
    assert_eq!(s.generation(&root.id), Some(1));
}

#[test]
fn downstream_unions_graphs_and_drops_heads_with_children() {
    let mut s = state(&[(1, &[]), (2, &[1])], &[2]);
    let added = s
        .downstream(&op(&[(1, &[]), (2, &[1]), (3, &[2]), (1000, &[1])], &[3]))
        .expect("downstream");
    assert_eq!(added, ids(&[3, 1000]));
    let want = state(&[(1, &[]), (2, &[1]), (3, &[2]), (1000, &[1])], &[3]);
    assert_eq!(s, want);
    assert_eq!(s.heads(), &set(&[3]));
}

#[test]
fn downstream_commutes() {
    let small = state(&[(1, &[]), (2, &[1])], &[2]);
    let big = state(&[(1, &[]), (2, &[1]), (3, &[2]), (1000, &[1])], &[3]);
    let mut ab = small.clone();
    ab.downstream(&big.to_op()).expect("a+b");
    let mut ba = big.clone();
    ba.downstream(&small.to_op()).expect("b+a");
    assert_eq!(ab, ba);
}

#[test]
fn downstream_is_idempotent() {
    let s = state(&[(1, &[]), (2, &[])], &[2]);
    let mut t = s.clone();
    assert!(t.downstream(&s.to_op()).expect("again").is_empty());
    assert_eq!(t, s);
}

#[test]
fn two_heads_converge_in_both_orders() {
    let conflict = state(&[(1, &[]), (2, &[1]), (3, &[2]), (1000, &[1])], &[3, 1000]);
    let small = state(&[(1, &[]), (2, &[1])], &[2]);
    let mut ab = conflict.clone();
    ab.downstream(&small.to_op()).expect("a+b");
    let mut ba = small.clone();
    ba.downstream(&conflict.to_op()).expect("b+a");
    assert_eq!(ab, ba);
    assert_eq!(ab.heads(), &set(&[3, 1000]));
}

#[test]
fn pull_fast_forwards_to_the_remote_tip() {
    let mut s = state(&[(1, &[])], &[1]);
    let remote = state(&[(1, &[]), (3, &[1]), (4, &[3])], &[4]);
    let op = s.pull(&remote, n(4)).expect("pull");
    assert_eq!(op.graph, vec![(n(3), ids(&[1])), (n(4), ids(&[3]))]);
    assert_eq!(op.heads, ids(&[4]));
    assert_eq!(s, remote);
}

#[test]
fn pull_is_refused_when_unnecessary_diverged_or_conflicting() {
    let remote = state(&[(1, &[]), (3, &[1]), (4, &[3]), (5, &[1])], &[4, 5]);
    let mut behind = state(&[(1, &[]), (3, &[1])], &[3]);
    assert_eq!(
        behind.pull(&remote, n(3)),
        Err(CdvcsError::PullUnnecessary { at: n(3) })
    );
    assert_eq!(
        behind.pull(&remote, n(5)),
        Err(CdvcsError::WouldConflict {
            head: n(3),
            at: n(5)
        })
    );
    let mut ahead = state(&[(1, &[]), (3, &[1]), (9, &[3])], &[9]);
    let before = ahead.clone();
    assert_eq!(
        ahead.pull(&remote, n(4)),
        Err(CdvcsError::NotFastForward {
            head: n(9),
            at: n(4)
        })
    );
    assert_eq!(
        ahead.pull(&remote, n(77)),
        Err(CdvcsError::UnknownCommit { id: n(77) })
    );
    assert_eq!(ahead, before);
}

#[test]
fn commit_goes_onto_the_single_head_and_emits_only_the_new_entry() {
    let mut s = state(&[(10, &[]), (30, &[10]), (40, &[30])], &[40]);
    let (c, op) = s
        .commit("mail:author@host.org", 0, tx("merge"))
        .expect("commit");
    assert_eq!(c.commit.parents, ids(&[40]));
    assert_eq!(Commit::decode(&c.bytes).expect("decode").id, c.id);
    assert_eq!(op.graph, vec![(c.id, ids(&[40]))]);
    assert_eq!(op.heads, vec![c.id]);
    assert_eq!(s.heads(), &[c.id].into_iter().collect());
    assert_eq!(s.generation(&c.id), Some(4));
}

#[test]
fn commit_is_refused_with_several_heads_or_no_transactions() {
    let mut s = state(&[(10, &[]), (30, &[10]), (40, &[10])], &[30, 40]);
    assert_eq!(s.heads().len(), 2);
    assert_eq!(
        s.commit("a", 1, tx("x")),
        Err(CdvcsError::MultipleHeads {
            heads: set(&[30, 40]).into_iter().collect()
        })
    );
    let mut single = state(&[(10, &[])], &[10]);
    assert_eq!(
        single.commit("a", 1, Vec::new()),
        Err(CdvcsError::NoTransactions)
    );
    assert_eq!(
        Cdvcs::empty().commit("a", 1, tx("x")),
        Err(CdvcsError::NoHead)
    );
}

#[test]
fn merge_with_stale_heads_is_refused() {
    let mut s = state(&[(10, &[]), (20, &[10]), (40, &[10])], &[20, 40]);
    let before = s.clone();
    assert_eq!(
        s.merge(&ids(&[40, 30]), "a", 0, Vec::new()),
        Err(CdvcsError::StaleHeads {
            given: ids(&[40, 30]),
            current: set(&[20, 40]).into_iter().collect()
        })
    );
    assert!(matches!(
        s.merge(&ids(&[40, 20, 40]), "a", 0, Vec::new()),
        Err(CdvcsError::StaleHeads { .. })
    ));
    assert_eq!(s, before);
    let mut one = state(&[(10, &[])], &[10]);
    assert_eq!(
        one.merge(&ids(&[10]), "a", 0, Vec::new()),
        Err(CdvcsError::NothingToMerge { head: n(10) })
    );
}

#[test]
fn lca_of_a_commit_with_itself_is_itself() {
    let s = state(&[(1, &[])], &[1]);
    assert_eq!(s.lca(&n(1), &n(1)), Ok(set(&[1])));
    let s = state(&[(1, &[]), (2, &[1])], &[2]);
    assert_eq!(s.lca(&n(2), &n(2)), Ok(set(&[2])));
    assert_eq!(s.lca(&n(1), &n(2)), Ok(set(&[1])));
}

#[test]
fn lca_through_an_extra_path_is_the_fork_point() {
    // 4 reaches 1 through 2 and through 3.
    let s = state(
        &[
            (1, &[]),
            (2, &[1]),
            (3, &[1]),
            (4, &[2, 3]),
            (5, &[1]),
            (7, &[5]),
        ],
        &[4, 7],
    );
    assert_eq!(s.lca(&n(4), &n(7)), Ok(set(&[1])));
    let s = state(
        &[
            (1, &[]),
            (2, &[1]),
            (3, &[1]),
            (4, &[2, 3]),
            (5, &[2]),
            (7, &[5]),
        ],
        &[4, 7],
    );
    assert_eq!(s.lca(&n(4), &n(7)), Ok(set(&[2])));
}

#[test]
fn lca_of_multiple_heads_holds_every_maximal_common_ancestor() {
    let s = state(
        &[
            (1, &[]),
            (2, &[1]),
            (3, &[1]),
            (4, &[2]),
            (5, &[3]),
            (7, &[2]),
        ],
        &[4, 5, 7],
    );
    assert_eq!(
        s.lca_of_sets(&ids(&[3, 4]), &ids(&[5, 7])),
        Ok(set(&[2, 3]))
    );
    // criss-cross: both 2 and 3 are lowest.
    let s = state(
        &[(1, &[]), (2, &[1]), (3, &[1]), (4, &[2, 3]), (5, &[3, 2])],
        &[4, 5],
    );
    assert_eq!(s.lca(&n(4), &n(5)), Ok(set(&[2, 3])));
    assert_eq!(
        s.lca(&n(4), &n(99)),
        Err(CdvcsError::UnknownCommit { id: n(99) })
    );
}

#[test]
fn history_is_depth_first_with_parents_in_order() {
    let s = state(
        &[
            (1, &[]),
            (2, &[1]),
            (3, &[2]),
            (4, &[3]),
            (5, &[1]),
            (6, &[5, 4]),
        ],
        &[6],
    );
    assert_eq!(s.history(&n(6)), Ok(ids(&[1, 5, 2, 3, 4, 6])));
    let applied: HashSet<Id> = ids(&[1, 5]).into_iter().collect();
    assert_eq!(s.history_since(&n(6), &applied), Ok(ids(&[2, 3, 4, 6])));
}

#[test]
fn history_of_a_200k_commit_chain_does_not_overflow_the_stack() {
    let mut s = state(&[(0, &[])], &[0]);
    let entries: Vec<(Id, Vec<Id>)> = (1..200_000u64).map(|i| (n(i), vec![n(i - 1)])).collect();
    s.downstream(&CdvcsOp {
        graph: entries,
        heads: vec![n(199_999)],
    })
    .expect("chain");
    let h = s.history(&n(199_999)).expect("history");
    assert_eq!(h.len(), 200_000);
    assert_eq!((h[0], h[199_999]), (n(0), n(199_999)));
    assert!(s.is_ancestor(&n(0), &n(199_999)));
    assert!(!s.is_ancestor(&n(199_999), &n(0)));
}

#[test]
fn downstream_with_an_unknown_parent_is_refused_and_changes_nothing() {
    let mut s = state(&[(1, &[])], &[1]);
    let before = s.clone();
    let bad = op(&[(2, &[1]), (3, &[2, 8])], &[3]);
    assert_eq!(s.missing(&bad), ids(&[8]));
    assert_eq!(
        s.downstream(&bad),
        Err(CdvcsError::MissingParents {
            commit: n(3),
            missing: ids(&[8])
        })
    );
    assert_eq!(
        s.downstream(&op(&[], &[5])),
        Err(CdvcsError::UnknownHead { head: n(5) })
    );
    assert_eq!(s, before);
}

#[test]
fn downstream_accepts_entries_in_any_order() {
    let mut s = state(&[(1, &[])], &[1]);
    let added = s
        .downstream(&op(&[(4, &[3]), (3, &[2]), (2, &[1])], &[4]))
        .expect("downstream");
    assert_eq!(added, ids(&[2, 3, 4]));
    assert_eq!(s.generation(&n(4)), Some(4));
}

#[test]
fn downstream_refuses_a_known_commit_with_other_parents() {
    let mut s = state(&[(1, &[]), (2, &[1])], &[2]);
    assert!(matches!(
        s.downstream(&op(&[(0, &[]), (2, &[0])], &[2])),
        Err(CdvcsError::ParentsMismatch { .. })
    ));
    assert_eq!(s.len(), 2);
}

#[test]
fn restore_accepts_any_order_and_names_what_is_missing() {
    let s = Cdvcs::restore(
        vec![(n(3), ids(&[2])), (n(1), vec![]), (n(2), ids(&[1]))],
        ids(&[3]),
    )
    .expect("restore");
    assert_eq!(s.history(&n(3)), Ok(ids(&[1, 2, 3])));
    assert_eq!(
        Cdvcs::restore(vec![(n(3), ids(&[2])), (n(1), vec![])], ids(&[3])),
        Err(CdvcsError::MissingParents {
            commit: n(3),
            missing: ids(&[2])
        })
    );
    assert_eq!(
        Cdvcs::restore(vec![(n(1), vec![]), (n(2), ids(&[1]))], ids(&[1])),
        Err(CdvcsError::HeadHasChild { head: n(1) })
    );
    assert!(matches!(
        Cdvcs::restore(vec![(n(1), ids(&[2])), (n(2), ids(&[1]))], ids(&[1])),
        Err(CdvcsError::Cycle { .. })
    ));
    let derived = Cdvcs::restore(vec![(n(1), vec![]), (n(2), ids(&[1]))], vec![]);
    assert_eq!(derived.map(|s| s.heads().clone()), Ok(set(&[2])));
}

#[test]
fn commits_between_is_what_they_lack_parents_first() {
    let s = state(
        &[
            (1, &[]),
            (2, &[1]),
            (3, &[2]),
            (4, &[2]),
            (5, &[3, 4]),
            (6, &[5]),
        ],
        &[6],
    );
    let between = s.commits_between(&ids(&[3]), &ids(&[6])).expect("between");
    assert_eq!(between, ids(&[4, 5, 6]));
    assert_eq!(
        s.commits_between(&ids(&[6, 42]), &ids(&[6])),
        Ok(Vec::new())
    );
    let all = s.commits_between(&[], &ids(&[6])).expect("all");
    assert_eq!(all.len(), 6);
    assert_eq!((all[0], all[5]), (n(1), n(6)));
}

#[test]
fn op_for_carries_the_entries_and_our_heads() {
    let s = state(&[(1, &[]), (2, &[1]), (3, &[2])], &[3]);
    let op = s.op_for(&ids(&[3, 2, 99]));
    assert_eq!(op.graph, vec![(n(2), ids(&[1])), (n(3), ids(&[2]))]);
    assert_eq!(op.heads, ids(&[3]));
}

#[test]
fn ancestry_sample_is_exponentially_spaced_and_ends_at_the_root() {
    let mut s = state(&[(0, &[])], &[0]);
    let chain: Vec<(Id, Vec<Id>)> = (1..=20u64).map(|i| (n(i), vec![n(i - 1)])).collect();
    s.downstream(&CdvcsOp {
        graph: chain,
        heads: ids(&[20]),
    })
    .expect("chain");
    assert_eq!(s.ancestry_sample(&n(20), 10), ids(&[19, 18, 16, 12, 4, 0]));
    assert_eq!(s.ancestry_sample(&n(20), 2), ids(&[19, 18]));
    assert!(s.ancestry_sample(&n(99), 4).is_empty());
}

mod merges;
