//! Merges: authored ones keep their order, joins are deterministic, writers join first.

use std::collections::BTreeSet;

use super::{ids, set, state, tx};
use crate::crdt::cdvcs::CdvcsError;

#[test]
fn a_merge_with_correcting_transactions_keeps_the_callers_order_and_author() {
    let mut s = state(&[(10, &[]), (30, &[10]), (40, &[10])], &[40]);
    let remote = state(&[(10, &[]), (20, &[10])], &[20]);
    s.downstream(&remote.to_op()).expect("downstream");
    assert_eq!(s.heads(), &set(&[20, 40]));
    let (c, op) = s.merge(&ids(&[40, 20]), "a", 7, tx("fix")).expect("merge");
    assert_eq!(c.commit.parents, ids(&[40, 20]));
    assert_eq!((c.commit.author.as_str(), c.commit.ts), ("a", 7));
    assert_eq!(op.graph, vec![(c.id, ids(&[40, 20]))]);
    assert_eq!(s.heads(), &[c.id].into_iter().collect());
    assert_eq!(s.len(), 5);
}

#[test]
fn a_merge_without_transactions_is_deterministic_whoever_makes_it_and_when() {
    let base = state(&[(10, &[]), (20, &[10]), (40, &[10])], &[20, 40]);
    let (mut a, mut b) = (base.clone(), base.clone());
    let (ca, _) = a.merge(&ids(&[40, 20]), "alice", 5, Vec::new()).expect("a");
    let (cb, _) = b.merge(&ids(&[20, 40]), "bob", 9, Vec::new()).expect("b");
    assert_eq!(ca.id, cb.id, "two replicas merging the same heads converge");
    assert_eq!(
        ca.commit.parents,
        ids(&[20, 40])
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    assert!(ca.commit.is_deterministic_merge());
    assert_eq!(a, b);
    assert_eq!(base.prepare_join().map(|(c, _)| c.id), Some(ca.id));
    assert_eq!(a.prepare_join(), None, "one head: nothing to join");
}

#[test]
fn commit_merging_joins_several_heads_first_and_commits_on_the_join() {
    let s = state(&[(10, &[]), (20, &[10]), (40, &[10])], &[20, 40]);
    let (commits, op) = s.prepare_commit_merging("w", 3, tx("x")).expect("commit");
    let [join, commit] = &commits[..] else {
        panic!("a join and a commit: {commits:?}")
    };
    assert!(join.commit.is_deterministic_merge());
    assert_eq!(commit.commit.parents, vec![join.id]);
    assert_eq!(op.heads, vec![commit.id]);
    let mut after = s.clone();
    after.downstream(&op).expect("the op applies");
    assert_eq!(after.heads(), &[commit.id].into_iter().collect());
    // One head: a plain commit.
    let one = state(&[(10, &[])], &[10]);
    let (commits, _) = one.prepare_commit_merging("w", 3, tx("x")).expect("commit");
    assert_eq!(commits.len(), 1);
    assert_eq!(commits[0].commit.parents, ids(&[10]));
    assert_eq!(
        s.prepare_commit_merging("w", 3, Vec::new()).map(|_| ()),
        Err(CdvcsError::NoTransactions)
    );
}
