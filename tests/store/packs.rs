//! Packs (store format 2, issue 16): the values a batch writes are stored compressed together;
//! every read path and `verify` see them as before, damage to a pack or its index is named and
//! never read back as data, and a store of format 1 is refused, untouched, naming `upgrade`.

use std::ops::ControlFlow;
use std::path::Path;

use redb::{ReadableTable, TableDefinition};
use replikativ::Id;
use replikativ::crdt::{CrdtKey, Transaction};
use replikativ::store::{
    FILE_NAME, FORMAT_VERSION, MAX_PACK_BYTES, Store, StoreError, WriteBatch, cdvcs,
};

const PACKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("packs");
const PACKED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("packed");

/// Value `i` of a family: distinctive, compressible, and about `len` bytes.
fn value(family: &str, i: usize, len: usize) -> Vec<u8> {
    let mut v = format!("{family}-VALUE-{i:06}-").into_bytes();
    while v.len() < len {
        v.extend_from_slice(format!("text of {family} {i} at {} ", v.len()).as_bytes());
    }
    v
}

fn batch_of(values: &[Vec<u8>]) -> (WriteBatch, Vec<Id>) {
    let mut b = WriteBatch::new();
    let ids = values.iter().map(|v| b.put_value(v.clone())).collect();
    (b, ids)
}

fn refs(values: &[Vec<u8>]) -> Vec<&[u8]> {
    values.iter().map(Vec::as_slice).collect()
}

fn all_values(store: &Store) -> Vec<(Id, Vec<u8>)> {
    let mut seen = Vec::new();
    store
        .for_each_value(|id, bytes| {
            seen.push((id, bytes.to_vec()));
            ControlFlow::Continue(())
        })
        .expect("scan values");
    seen
}

#[test]
fn a_batch_is_stored_as_one_pack_and_every_read_path_sees_its_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let values: Vec<Vec<u8>> = (0..100).map(|i| value("PACKED", i, 2_000)).collect();
    let ids = {
        let store = Store::open(dir.path()).expect("open");
        let (batch, ids) = batch_of(&values);
        store.write(&batch).expect("write");
        ids
    };
    let file = std::fs::read(dir.path().join(FILE_NAME)).expect("read file");
    assert!(
        !file.windows(20).any(|w| w == &values[42][..20]),
        "the values are compressed"
    );
    // Reopened: nothing decoded is cached, every read goes to the pack on disk.
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.value_count().expect("count"), 100);
    for (id, v) in ids.iter().zip(&values) {
        assert_eq!(store.get_value(id).expect("read").as_ref(), Some(v));
        assert!(store.has_value(id).expect("has"));
    }
    let got = store.get_values(&ids).expect("read all");
    assert!(got.iter().zip(&values).all(|(g, v)| g.as_ref() == Some(v)));
    let mut seen = all_values(&store);
    seen.sort();
    let mut expected: Vec<(Id, Vec<u8>)> = ids.iter().copied().zip(values).collect();
    expected.sort();
    assert_eq!(
        seen, expected,
        "for_each_value visits each packed value once"
    );
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.values_checked, report.packs_checked), (100, 1));
    assert!(!store.has_value(&Id::of(b"absent")).expect("has"));
    assert_eq!(store.get_value(&Id::of(b"absent")).expect("read"), None);
}

#[test]
fn commit_records_and_lone_values_stay_loose_and_a_commits_params_share_a_pack() {
    let store = Store::in_memory().expect("store");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(9));
    let (state, mut batch) = cdvcs::create(&key);
    let params: Vec<Vec<u8>> = (0..3).map(|i| value("PARAM", i, 500)).collect();
    let txs: Vec<Transaction> = params
        .iter()
        .map(|p| Transaction {
            op: "note".into(),
            params: batch.put_value(p.clone()),
        })
        .collect();
    let (commit, op) = state.prepare_commit("a", 1, txs).expect("commit");
    batch.merge(cdvcs::commits_batch(
        &key,
        std::slice::from_ref(&commit),
        &op.heads,
    ));
    store.write(&batch).expect("write");
    let mut lone = WriteBatch::new();
    let alone = lone.put_value(value("ALONE", 0, 100));
    store.write(&lone).expect("write");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    // Root and commit records, the lone value: loose; the three params: one pack.
    assert_eq!((report.values_checked, report.packs_checked), (6, 1));
    let loaded = cdvcs::load_commit(&store, &commit.id)
        .expect("read")
        .expect("stored");
    let read: Vec<Vec<u8>> = loaded.params.into_iter().filter_map(|(_, v)| v).collect();
    assert_eq!(read, params);
    assert!(store.get_value(&alone).expect("read").is_some());
    let loose: Vec<Id> = all_values(&store)[..3].iter().map(|(id, _)| *id).collect();
    assert!(
        loose.contains(&commit.id) && loose.contains(&alone),
        "loose first"
    );
}

#[test]
fn a_batch_larger_than_a_pack_makes_several_each_in_the_order_its_values_were_added() {
    let store = Store::in_memory().expect("store");
    let per = 200_000;
    let values: Vec<Vec<u8>> = (0..50).map(|i| value("BIG", i, per)).collect();
    let huge = value("HUGE", 0, MAX_PACK_BYTES + 1);
    let mut batch = WriteBatch::new();
    let mut ids: Vec<Id> = Vec::new();
    for (i, v) in values.iter().enumerate() {
        ids.push(batch.put_value(v.clone()));
        if i == 19 {
            // Between two full packs' worth: stored loose, the packs around it unchanged.
            batch.put_value(huge.clone());
        }
    }
    store.write(&batch).expect("write");
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    let per_pack = MAX_PACK_BYTES / (per + 40);
    let packs = 50usize.div_ceil(per_pack);
    assert_eq!(report.packs_checked, packs as u64, "{report}");
    assert_eq!(report.values_checked, 51);
    // The huge value is loose (visited first); the others pack by pack, each pack a run of
    // consecutive values in the order they were added.
    let seen = all_values(&store);
    assert_eq!(seen[0].1, huge);
    let order: Vec<usize> = seen[1..]
        .iter()
        .map(|(id, _)| ids.iter().position(|i| i == id).expect("a batch value"))
        .collect();
    let runs = order.windows(2).filter(|w| w[1] != w[0] + 1).count() + 1;
    assert_eq!(runs, packs, "each pack holds consecutive values: {order:?}");
    for (id, v) in ids.iter().zip(&values) {
        assert_eq!(store.get_value(id).expect("read").as_ref(), Some(v));
    }
}

#[test]
fn values_already_stored_are_not_packed_again() {
    let store = Store::in_memory().expect("store");
    let values: Vec<Vec<u8>> = (0..15).map(|i| value("AGAIN", i, 300)).collect();
    store.write(&batch_of(&values[..10]).0).expect("write");
    store.write(&batch_of(&values[5..]).0).expect("write");
    assert_eq!(store.value_count().expect("count"), 15);
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.values_checked, report.packs_checked), (15, 2));
}

/// Index entries and packs rewritten behind the store's back (redb's checksums cannot see
/// this: the pages are consistent, the content is wrong): `verify` names each, reads refuse.
#[test]
fn tampered_packs_and_index_entries_are_named_by_verify_and_refused_by_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first: Vec<Vec<u8>> = (0..10).map(|i| value("FIRST", i, 300)).collect();
    let second: Vec<Vec<u8>> = (0..10).map(|i| value("SECOND", i, 300)).collect();
    let third: Vec<Vec<u8>> = (0..10).map(|i| value("THIRD", i, 300)).collect();
    let (ids1, ids2, ids3) = {
        let store = Store::open(dir.path()).expect("open");
        let (b1, ids1) = batch_of(&first);
        let (b2, ids2) = batch_of(&second);
        let (b3, ids3) = batch_of(&third);
        for b in [&b1, &b2, &b3] {
            store.write(b).expect("write");
        }
        (ids1, ids2, ids3)
    };
    let pack2 = Id::of(&replikativ::pack::encode(&refs(&second)));
    let pack3 = Id::of(&replikativ::pack::encode(&refs(&third)));
    {
        let db = redb::Database::open(dir.path().join(FILE_NAME)).expect("open");
        let txn = db.begin_write().expect("txn");
        {
            let mut packed = txn.open_table(PACKED).expect("packed");
            let moved = packed
                .get(&ids1[4].as_bytes()[..])
                .expect("get")
                .expect("indexed")
                .value()
                .to_vec();
            // Value 3 now claims value 4's place.
            packed
                .insert(&ids1[3].as_bytes()[..], &moved[..])
                .expect("insert");
            let mut packs = txn.open_table(PACKS).expect("packs");
            // Pack 2's id now holds another well-formed pack; pack 3 is gone.
            let other = replikativ::pack::encode(&refs(&first[..2]));
            packs
                .insert(&pack2.as_bytes()[..], &other[..])
                .expect("insert");
            packs.remove(&pack3.as_bytes()[..]).expect("remove");
        }
        txn.commit().expect("commit");
    }
    let store = Store::open(dir.path()).expect("redb itself is consistent");
    let report = store.verify().expect("verify");
    let named = |key: &Id| report.damage.iter().any(|d| d.key == key.to_hex());
    assert!(named(&ids1[3]), "the misplaced index entry: {report}");
    assert!(named(&pack2), "the pack under another id: {report}");
    assert!(
        ids3.iter().all(named),
        "each value of the lost pack: {report}"
    );
    assert!(!named(&ids1[4]) && !named(&ids1[5]), "{report}");
    let err = store.get_value(&ids1[3]).expect_err("misplaced");
    assert!(
        matches!(err, StoreError::HashMismatch { id, .. } if id == ids1[3]),
        "{err}"
    );
    let err = store.get_value(&ids2[0]).expect_err("other pack");
    assert!(
        matches!(err, StoreError::HashMismatch { table: "packs", id, .. } if id == pack2),
        "{err}"
    );
    let err = store.get_value(&ids3[0]).expect_err("lost pack");
    assert!(err.to_string().contains("is missing"), "{err}");
    assert_eq!(
        store.get_value(&ids1[4]).expect("intact").as_deref(),
        Some(&first[4][..])
    );
}

/// Flips one byte inside every stored copy of a pack: an error on open, on the read, and in
/// `verify`, never a panic and never the damaged bytes.
#[test]
fn a_flipped_byte_in_a_pack_is_reported_and_never_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let values: Vec<Vec<u8>> = (0..200).map(|i| value("FLIP", i, 250)).collect();
    let ids = {
        let store = Store::open(dir.path()).expect("open");
        let (batch, ids) = batch_of(&values);
        store.write(&batch).expect("write");
        ids
    };
    let path = dir.path().join(FILE_NAME);
    let mut bytes = std::fs::read(&path).expect("read");
    let magic = [&replikativ::pack::MAGIC[..], &[1]].concat();
    let hits: Vec<usize> = bytes
        .windows(magic.len())
        .enumerate()
        .filter(|(_, w)| *w == &magic[..])
        .map(|(i, _)| i)
        .collect();
    assert!(!hits.is_empty(), "the pack is in the file");
    for at in hits {
        // Past the header (200 lengths of 2 bytes), inside the frame.
        bytes[at + 600] ^= 0x04;
    }
    std::fs::write(&path, &bytes).expect("write");
    match Store::open(dir.path()) {
        Err(err) => assert!(matches!(err, StoreError::Damaged { .. }), "{err}"),
        Ok(store) => {
            let report = store.verify().expect("verify");
            assert!(report.damage.iter().any(|d| d.table == "packs"), "{report}");
            for (id, v) in ids.iter().zip(&values) {
                match store.get_value(id) {
                    Ok(Some(read)) => assert_eq!(&read, v, "never the damaged bytes"),
                    Ok(None) => panic!("a packed value vanished without an error"),
                    Err(_) => {}
                }
            }
            assert!(
                store.get_value(&ids[123]).is_err(),
                "the damage is reported"
            );
        }
    }
}

fn fixture_copy(to: &Path) -> Vec<u8> {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-1-store");
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::copy(from.join(FILE_NAME), to.join(FILE_NAME)).expect("copy the fixture");
    std::fs::read(to.join(FILE_NAME)).expect("read")
}

#[test]
fn a_format_1_store_is_refused_naming_upgrade_and_left_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = fixture_copy(dir.path());
    let err = Store::open(dir.path()).expect_err("format 1");
    match &err {
        StoreError::OlderFormat {
            found, supported, ..
        } => assert_eq!((*found, *supported), (1, FORMAT_VERSION)),
        other => panic!("expected OlderFormat, got {other}"),
    }
    let shown = err.to_string();
    let upgrade = format!("replikativ upgrade --store {}", dir.path().display());
    assert!(shown.contains(&upgrade), "{shown}");
    // Read-only, it is readable as it is (what `upgrade` reads), and nothing is written.
    let old = Store::open_read_only(dir.path()).expect("read-only");
    assert_eq!(old.value_count().expect("count"), 68);
    let report = old.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.values_checked, report.packs_checked), (68, 0));
    let err = old
        .write(&batch_of(&[b"x".to_vec()]).0)
        .expect_err("read-only");
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err}");
    drop(old);
    let after = std::fs::read(dir.path().join(FILE_NAME)).expect("read");
    assert!(
        before == after,
        "refusing and reading left the file as it was"
    );
}

const PACK_IDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pack_ids");
const COMMIT_PACKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("commit_packs");

/// Writes commit `ts` of `n` params (family `family`) on top of `state`; answers its id and
/// its params' bytes.
fn commit_of(
    store: &Store,
    key: &CrdtKey,
    state: &mut replikativ::crdt::Cdvcs,
    family: &str,
    n: usize,
    ts: i64,
) -> (Id, Vec<Vec<u8>>) {
    let mut batch = WriteBatch::new();
    let params: Vec<Vec<u8>> = (0..n).map(|i| value(family, i, 400)).collect();
    let txs: Vec<Transaction> = params
        .iter()
        .map(|p| Transaction {
            op: "note".into(),
            params: batch.put_value(p.clone()),
        })
        .collect();
    let (commit, op) = state.prepare_commit("a", ts, txs).expect("commit");
    batch.merge(cdvcs::commits_batch(
        key,
        std::slice::from_ref(&commit),
        &op.heads,
    ));
    store.write(&batch).expect("write");
    state.downstream(&op).expect("apply");
    (commit.id, params)
}

fn table_len(dir: &Path, def: TableDefinition<&[u8], &[u8]>) -> u64 {
    use redb::{ReadableDatabase, ReadableTableMetadata};
    let db = redb::Database::open(dir.join(FILE_NAME)).expect("open");
    let txn = db.begin_read().expect("txn");
    txn.open_table(def).expect("table").len().expect("len")
}

/// Format 3: a commit's params are found through the commit (one record per commit and per
/// pack), with no index entry per value; every read path still finds and re-hashes them.
#[test]
fn a_commits_params_are_found_through_the_commit_without_an_index_entry_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(21));
    let (id, params) = {
        let store = Store::open(dir.path()).expect("open");
        let (mut state, batch) = cdvcs::create(&key);
        store.write(&batch).expect("write");
        commit_of(&store, &key, &mut state, "THROUGH", 50, 1)
    };
    assert_eq!(table_len(dir.path(), PACKED), 0, "no index entry per param");
    assert_eq!(table_len(dir.path(), COMMIT_PACKS), 1);
    assert_eq!(table_len(dir.path(), PACK_IDS), 1);
    let store = Store::open(dir.path()).expect("reopen");
    let loaded = cdvcs::load_commit(&store, &id)
        .expect("read")
        .expect("stored");
    let read: Vec<Vec<u8>> = loaded.params.into_iter().filter_map(|(_, v)| v).collect();
    assert_eq!(read, params);
    // By id alone too (searching the packs' ids).
    for p in &params {
        assert_eq!(store.get_value(&Id::of(p)).expect("read").as_ref(), Some(p));
        assert!(store.has_value(&Id::of(p)).expect("has"));
    }
    assert_eq!(store.value_count().expect("count"), 52);
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.values_checked, report.packs_checked), (52, 1));
}

/// A pack's ids record rewritten (two ids swapped) and a commit's packs record naming a pack
/// that is not there: `verify` names both, reads refuse, never returning wrong bytes.
#[test]
fn tampered_pack_ids_and_commit_packs_are_named_by_verify_and_refused_by_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = CrdtKey::new("u", uuid::Uuid::from_u128(22));
    let ((first, first_params), (second, _)) = {
        let store = Store::open(dir.path()).expect("open");
        let (mut state, batch) = cdvcs::create(&key);
        store.write(&batch).expect("write");
        let a = commit_of(&store, &key, &mut state, "FIRST", 10, 1);
        let b = commit_of(&store, &key, &mut state, "SECOND", 10, 2);
        (a, b)
    };
    let pack1 = Id::of(&replikativ::pack::encode(&refs(&first_params)));
    let nowhere = Id::of(b"a pack nobody wrote");
    {
        let db = redb::Database::open(dir.path().join(FILE_NAME)).expect("open");
        let txn = db.begin_write().expect("txn");
        {
            let mut ids = txn.open_table(PACK_IDS).expect("pack_ids");
            let mut raw = ids
                .get(&pack1.as_bytes()[..])
                .expect("get")
                .expect("recorded")
                .value()
                .to_vec();
            let (a, b) = raw.split_at_mut(32);
            a.swap_with_slice(&mut b[..32]);
            ids.insert(&pack1.as_bytes()[..], &raw[..]).expect("insert");
            let mut commits = txn.open_table(COMMIT_PACKS).expect("commit_packs");
            commits
                .insert(&second.as_bytes()[..], &nowhere.as_bytes()[..])
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let store = Store::open(dir.path()).expect("redb itself is consistent");
    let report = store.verify().expect("verify");
    let named = |table: &str, key: &Id| {
        report
            .damage
            .iter()
            .any(|d| d.table == table && d.key == key.to_hex())
    };
    assert!(named("pack_ids", &pack1), "the swapped ids: {report}");
    assert!(named("commit_packs", &second), "the lost pack: {report}");
    let err = cdvcs::load_commit(&store, &first).expect_err("swapped ids");
    assert!(
        replikativ_actors::error_chain(&err).contains("hash"),
        "{}",
        replikativ_actors::error_chain(&err)
    );
    let err = cdvcs::load_commit(&store, &second).expect_err("lost pack");
    assert!(
        replikativ_actors::error_chain(&err).contains(&nowhere.to_hex()),
        "{}",
        replikativ_actors::error_chain(&err)
    );
}

fn fixture_2_copy(to: &Path) -> Vec<u8> {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-2-store");
    std::fs::create_dir_all(to).expect("mkdir");
    std::fs::copy(from.join(FILE_NAME), to.join(FILE_NAME)).expect("copy the fixture");
    std::fs::read(to.join(FILE_NAME)).expect("read")
}

/// A store of format 2 (packs with an index entry per value; the committed fixture, see its
/// README) is refused naming `upgrade`, which rewrites it in format 3, keeps it as
/// `store.format-2.redb`, and the new store holds every commit's params, found through it.
#[test]
fn a_format_2_store_is_refused_then_upgraded_with_every_param_found_through_its_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = fixture_2_copy(dir.path());
    let err = Store::open(dir.path()).expect_err("format 2");
    match &err {
        StoreError::OlderFormat {
            found, supported, ..
        } => assert_eq!((*found, *supported), (2, FORMAT_VERSION)),
        other => panic!("expected OlderFormat, got {other}"),
    }
    assert!(err.to_string().contains("replikativ upgrade"), "{err}");
    let done = replikativ::store::upgrade::upgrade(dir.path(), &mut |_| {}).expect("upgrade");
    let backup = dir.path().join(replikativ::store::upgrade::backup_name(2));
    assert!(
        matches!(&done, replikativ::store::upgrade::Upgraded::Done { backup: b, .. } if *b == backup),
        "{done:?}"
    );
    assert!(
        std::fs::read(&backup).expect("backup") == before,
        "the backup is the old store"
    );
    let store = Store::open(dir.path()).expect("format 3");
    assert_eq!(store.format().expect("format"), FORMAT_VERSION);
    let report = store.verify().expect("verify");
    assert!(report.is_ok(), "{report}");
    assert_eq!(store.value_count().expect("count"), 68);
    let mut params = 0;
    for key in store.list_crdts().expect("crdts") {
        let graph = cdvcs::load(&store, &key).expect("load").expect("stored");
        for (id, parents) in graph.entries() {
            let c = cdvcs::load_commit(&store, &id)
                .expect("read")
                .expect("stored");
            if !parents.is_empty() {
                assert!(c.params.iter().all(|(_, v)| v.is_some()), "commit {id}");
                params += c.params.len();
            }
        }
    }
    assert_eq!(params, 62, "the fixture's 62 tweets");
    drop(store);
    assert_eq!(
        table_len(dir.path(), PACKED),
        0,
        "every param is found through its commit"
    );
}
