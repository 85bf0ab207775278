//! Unit tests of the store's packs.

use super::*;
use crate::crdt::{CrdtKey, Transaction};
use crate::store::cdvcs;

/// Reading a commit's params decodes their pack once; the cache keeps [`PACK_CACHE`].
#[test]
fn a_commits_params_decode_once_and_the_cache_stays_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(11));
    let mut commits = Vec::new();
    {
        let store = Store::open(dir.path()).expect("open");
        let (mut state, batch) = cdvcs::create(&key);
        store.write(&batch).expect("write");
        for c in 0..6u32 {
            let mut batch = WriteBatch::new();
            let txs = (0..50u32)
                .map(|i| Transaction {
                    op: "note".into(),
                    params: batch.put_value(format!("commit {c} value {i}").into_bytes()),
                })
                .collect();
            let (commit, op) = state.prepare_commit("a", 1, txs).expect("commit");
            batch.merge(cdvcs::commits_batch(
                &key,
                std::slice::from_ref(&commit),
                &op.heads,
            ));
            store.write(&batch).expect("write");
            state.downstream(&op).expect("apply");
            commits.push(commit.id);
        }
    }
    let store = Store::open(dir.path()).expect("reopen");
    let decoded = || store.inner.packs.decoded.load(Ordering::Relaxed);
    let load = |id: &Id| {
        let c = cdvcs::load_commit(&store, id)
            .expect("read")
            .expect("stored");
        assert!(c.params.iter().all(|(_, v)| v.is_some()));
        c.params.into_iter().map(|(id, _)| id).collect::<Vec<_>>()
    };
    assert_eq!(decoded(), 0);
    let params = load(&commits[0]);
    assert_eq!(decoded(), 1, "fifty params, one pack decoded");
    load(&commits[0]);
    store.get_values(&params).expect("read");
    assert_eq!(decoded(), 1, "read again from the cache");
    for id in &commits[1..=PACK_CACHE] {
        load(id);
    }
    assert_eq!(decoded(), 1 + PACK_CACHE as u64);
    load(&commits[PACK_CACHE]);
    assert_eq!(decoded(), 1 + PACK_CACHE as u64, "the latest stays");
    load(&commits[0]);
    assert_eq!(decoded(), 2 + PACK_CACHE as u64, "the oldest was evicted");
}
