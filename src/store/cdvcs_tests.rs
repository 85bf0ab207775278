//! Tests of `store::cdvcs`.

use super::*;
use crate::crdt::Transaction;

#[test]
fn a_created_cdvcs_with_a_commit_loads_back_equal() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(3));
    assert!(load(&store, &key).expect("load").is_none());
    let (mut state, batch) = create(&key);
    store.write(&batch).expect("write");
    let tx = Transaction {
        op: "note".into(),
        params: Id::of(b"x"),
    };
    let (c, op) = state.prepare_commit("a", 1, vec![tx]).expect("commit");
    store
        .write(&commits_batch(&key, std::slice::from_ref(&c), &op.heads))
        .expect("write");
    state.downstream(&op).expect("apply");
    assert_eq!(load(&store, &key).expect("load"), Some(state));
}

#[test]
fn a_commit_loads_with_its_params_from_one_snapshot() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(5));
    let (state, mut batch) = create(&key);
    let stored = batch.put_value(b"\x91\x01".to_vec());
    let absent = Id::of(b"never stored");
    let txs = [stored, absent].map(|params| Transaction {
        op: "note".into(),
        params,
    });
    let (c, op) = state.prepare_commit("a", 1, txs.to_vec()).expect("commit");
    batch.merge(commits_batch(&key, std::slice::from_ref(&c), &op.heads));
    store.write(&batch).expect("write");
    let loaded = load_commit(&store, &c.id).expect("read").expect("stored");
    assert_eq!(loaded.commit, c);
    assert_eq!(
        loaded.params,
        vec![(stored, Some(b"\x91\x01".to_vec())), (absent, None)]
    );
    let root = *state.heads().iter().next().expect("root");
    let loaded_root = load_commit(&store, &root).expect("read").expect("root");
    assert!(loaded_root.params.iter().all(|(_, v)| v.is_none()));
    assert!(load_commit(&store, &absent).expect("read").is_none());
    let mut not_a_commit = WriteBatch::new();
    let value = not_a_commit.put_value(b"\xc1".to_vec());
    store.write(&not_a_commit).expect("write");
    assert!(matches!(
        load_commit(&store, &value),
        Err(CommitReadError::NotACommit { .. })
    ));
}

#[test]
fn a_damaged_heads_record_is_named() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(4));
    let mut batch = WriteBatch::new();
    batch.put_state(keys::heads(&key.user, &key.id), b"\xc1".to_vec());
    store.write(&batch).expect("write");
    let err = load(&store, &key).expect_err("damaged");
    assert!(matches!(err, LoadError::Damaged { ref what, .. } if what == "heads record"));
}

#[test]
fn a_peer_heads_hint_round_trips_and_a_damaged_one_reads_as_none() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(6));
    let peer = crate::identity::Keypair::from_seed([7; 32]).public();
    assert!(peer_heads_hint(&store, &peer, &key).is_empty());
    let heads = vec![Id::of(b"one"), Id::of(b"two")];
    store
        .write(&peer_heads_batch(&peer, &key, &heads))
        .expect("write");
    assert_eq!(peer_heads_hint(&store, &peer, &key), heads);
    let other = crate::identity::Keypair::from_seed([8; 32]).public();
    assert!(peer_heads_hint(&store, &other, &key).is_empty(), "per peer");
    let mut batch = WriteBatch::new();
    batch.put_state(
        keys::peer_heads(peer.as_bytes(), &key.user, &key.id),
        b"\xc1".to_vec(),
    );
    store.write(&batch).expect("write");
    assert!(peer_heads_hint(&store, &peer, &key).is_empty());
}

#[test]
fn a_keyed_commit_whose_signature_record_is_gone_reads_as_damaged_not_unsigned() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(8));
    let (state, batch) = create(&key);
    store.write(&batch).expect("write");
    let signer = crate::identity::Keypair::from_seed([3; 32]);
    let author = signer.public().to_string();
    let tx = Transaction {
        op: "note".into(),
        params: Id::of(b"x"),
    };
    let (c, op) = state.prepare_commit(&author, 1, vec![tx]).expect("commit");
    let c = c.signed(&signer);
    store
        .write(&commits_batch(&key, std::slice::from_ref(&c), &op.heads))
        .expect("write");
    let read = load_commit_record(&store, &c.id)
        .expect("read")
        .expect("stored");
    assert!(read.signature.is_some());
    let mut lose = WriteBatch::new();
    lose.delete_state(keys::commit_signature(&c.id));
    store.write(&lose).expect("write");
    let err = load_commit_record(&store, &c.id).expect_err("damaged");
    // The root of a CDVCS owned by a key names the key and is never signed.
    let owned = CrdtKey::new(author.clone(), uuid::Uuid::from_u128(11));
    let (owned_state, owned_batch) = create(&owned);
    store.write(&owned_batch).expect("write");
    let root = *owned_state.heads().iter().next().expect("root");
    assert!(
        load_commit_record(&store, &root)
            .expect("root reads")
            .is_some()
    );
    let chain = crate::realize::realizer::error_chain(&err);
    assert!(chain.contains("signature of commit"), "{chain}");
    assert!(load_commit(&store, &c.id).is_err());
}

#[test]
fn a_graph_without_its_heads_record_is_damaged_not_absent() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(10));
    store.write(&create(&key).1).expect("write");
    let mut lose = WriteBatch::new();
    lose.delete_state(keys::heads(&key.user, &key.id));
    store.write(&lose).expect("write");
    let err = load(&store, &key).expect_err("damaged");
    assert!(matches!(err, LoadError::Damaged { ref what, .. } if what == "heads record"));
}
