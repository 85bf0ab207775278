//! Tests of `store::graph`: the entry layout, a CDVCS opened with its heads only against a
//! naive oracle (the list of commits in the order they were made), and generations written
//! once into a graph stored without them.

use super::*;
use crate::crdt::{EncodedCommit, Transaction};
use crate::store::cdvcs::{commits_batch, commits_batch_with, create};

#[test]
fn an_entry_reads_back_with_and_without_its_generation() {
    let ps = vec![Id::of(b"a"), Id::of(b"b")];
    for g in [None, Some(1), Some(300), Some(1 << 40)] {
        let raw = entry_value(&ps, g);
        assert_eq!(decode_entry(&raw), Ok((ps.clone(), g)));
        // A reader of the older layout still finds the parents.
        let old: Vec<Id> = rmp_serde::from_slice(&raw).expect("older reader");
        assert_eq!(old, ps);
    }
    let mut raw = entry_value(&ps, Some(7));
    raw.push(0);
    assert!(decode_entry(&raw).is_err());
    assert!(decode_entry(&entry_value(&ps, Some(0))).is_err());
}

fn tx(n: usize) -> Vec<Transaction> {
    vec![Transaction {
        op: "note".into(),
        params: Id::of(&n.to_le_bytes()),
    }]
}

/// Makes `n` commits on the single head of `state`, `per` per batch, each batch written to
/// `store` before it is applied (as a replica does); answers them in order.
fn grow(
    store: &Store,
    key: &CrdtKey,
    state: &mut Cdvcs,
    from: usize,
    n: usize,
    per: usize,
) -> Vec<Id> {
    let mut made = Vec::new();
    let mut scratch = state.clone();
    let mut commits: Vec<EncodedCommit> = Vec::new();
    for i in from..from + n {
        let (c, _) = scratch.commit("a", i as i64, tx(i)).expect("commit");
        made.push(c.id);
        commits.push(c);
        if commits.len() == per || i + 1 == from + n {
            let op = crate::crdt::CdvcsOp {
                graph: commits
                    .iter()
                    .map(|c| (c.id, c.commit.parents.clone()))
                    .collect(),
                heads: vec![commits.last().expect("one").id],
            };
            let batch = commits_batch_with(key, &commits, &op.heads, &|id| state.generation(id));
            store.write(&batch).expect("write");
            assert_eq!(state.downstream(&op).expect("apply").len(), commits.len());
            commits.clear();
        }
    }
    made
}

#[test]
fn a_cdvcs_opened_with_its_heads_answers_like_its_whole_history() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(21));
    let (whole, batch) = create(&key);
    store.write(&batch).expect("write");
    let root = *whole.heads().first().expect("root");
    let mut state = open(&store, &key).expect("open").expect("stored");
    assert!(state.is_backed());
    // More commits than a backed state keeps in memory.
    let mut chain = vec![root];
    chain.extend(grow(&store, &key, &mut state, 0, 6000, 700));
    assert!(
        state.len() <= 4096 + 700,
        "{} commits in memory",
        state.len()
    );
    let head = *chain.last().expect("head");
    assert_eq!(
        state.heads().iter().copied().collect::<Vec<_>>(),
        vec![head]
    );
    for reopened in [false, true] {
        let s = match reopened {
            false => state.clone(),
            true => open(&store, &key).expect("reopen").expect("stored"),
        };
        assert_eq!(s.history(&head).expect("history"), chain);
        assert_eq!(s.generation(&chain[4321]), Some(4322));
        assert_eq!(s.parents(&chain[10]), Some(vec![chain[9]]));
        assert!(s.is_ancestor(&chain[17], &chain[5000]));
        assert!(!s.is_ancestor(&chain[5000], &chain[17]));
        assert_eq!(
            s.commits_between(&[chain[100]], &[chain[140]])
                .expect("between"),
            chain[101..=140].to_vec()
        );
        assert_eq!(
            s.ancestry_sample(&head, 3),
            vec![chain[5999], chain[5998], chain[5996]]
        );
        let lca = s.lca(&chain[3000], &chain[200]).expect("lca");
        assert_eq!(lca.into_iter().collect::<Vec<_>>(), vec![chain[200]]);
    }
    // Two concurrent commits on the same head, then their join: heads as in a whole state.
    let mut other = state.clone();
    let mine = grow(&store, &key, &mut state, 7000, 1, 1);
    let theirs = grow(&store, &key, &mut other, 8000, 1, 1);
    let op = crate::crdt::CdvcsOp {
        graph: vec![(theirs[0], vec![head])],
        heads: theirs.clone(),
    };
    state.downstream(&op).expect("join");
    let mut both: Vec<Id> = vec![mine[0], theirs[0]];
    both.sort();
    assert_eq!(state.heads().iter().copied().collect::<Vec<_>>(), both);
    // A commit on an old parent, written then applied: new, with or without the walk.
    let source = Arc::new(StoreGraph::new(store.clone(), key.clone()));
    let at_10 = Cdvcs::backed(source, vec![chain[10]]).expect("a view at commit 10");
    let (old_fork, op) = at_10.prepare_commit("b", 1, tx(9999)).expect("fork");
    let batch = commits_batch_with(&key, std::slice::from_ref(&old_fork), &op.heads, &|id| {
        state.generation(id)
    });
    store.write(&batch).expect("write");
    let mut walked = state.clone();
    assert_eq!(walked.downstream(&op).expect("walked"), vec![old_fork.id]);
    assert_eq!(
        state.downstream_written(&op).expect("written"),
        vec![old_fork.id]
    );
    both.push(old_fork.id);
    both.sort();
    assert_eq!(state.heads().iter().copied().collect::<Vec<_>>(), both);
    assert_eq!(walked.heads(), state.heads());
    assert_eq!(state.generation(&old_fork.id), Some(12));
    // A stale op naming an old commit as head changes nothing.
    let stale = crate::crdt::CdvcsOp {
        graph: vec![(chain[3], vec![chain[2]])],
        heads: vec![chain[3]],
    };
    assert!(state.downstream(&stale).expect("stale").is_empty());
    assert_eq!(state.heads().iter().copied().collect::<Vec<_>>(), both);
    // Known with other parents: refused.
    let forged = crate::crdt::CdvcsOp {
        graph: vec![(chain[3], vec![chain[1]])],
        heads: vec![],
    };
    assert!(matches!(
        state.downstream(&forged),
        Err(crate::crdt::CdvcsError::ParentsMismatch { .. })
    ));
}

#[test]
fn a_graph_stored_without_generations_gets_them_once_on_open() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(22));
    let (mut whole, batch) = create(&key);
    store.write(&batch).expect("write");
    let mut chain = whole.heads().iter().copied().collect::<Vec<_>>();
    for i in 0..50 {
        let (c, op) = whole.commit("a", i, tx(i as usize)).expect("commit");
        // One commit per batch without the state: its parent is outside, no generation.
        store
            .write(&commits_batch(&key, std::slice::from_ref(&c), &op.heads))
            .expect("write");
        chain.push(c.id);
    }
    let stored = |id: &Id| {
        let raw = store.get_state(&keys::graph_entry(&key.user, &key.id, id));
        decode_entry(&raw.expect("read").expect("entry")).expect("decode")
    };
    assert_eq!(stored(&chain[7]).1, None);
    // Derived on read, before any is written.
    let source = StoreGraph::new(store.clone(), key.clone());
    assert_eq!(
        source
            .entry(&chain[30])
            .expect("derive")
            .map(|e| e.generation),
        Some(31)
    );
    let state = open(&store, &key).expect("open").expect("stored");
    for (k, id) in chain.iter().enumerate() {
        assert_eq!(
            stored(id),
            (whole.parents(id).expect("held"), Some(k as u64 + 1))
        );
    }
    assert_eq!(state.history(&chain[50]).expect("history"), chain);
}

#[test]
fn a_parent_cycle_in_a_damaged_graph_is_refused_when_deriving() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(23));
    let (a, b, c) = (Id::of(b"a"), Id::of(b"b"), Id::of(b"c"));
    let mut batch = WriteBatch::new();
    for (id, parents) in [(a, vec![b]), (b, vec![c]), (c, vec![a])] {
        batch.put_state(
            keys::graph_entry(&key.user, &key.id, &id),
            entry_value(&parents, None),
        );
    }
    store.write(&batch).expect("write");
    let err = StoreGraph::new(store, key).entry(&a).expect_err("a cycle");
    assert!(err.0.contains("its own ancestor"), "{err}");
}
