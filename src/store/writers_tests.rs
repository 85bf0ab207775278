//! Tests of `store::writers`: records written with the commits are what a later rule reads,
//! a CDVCS stored without them gets them once, and damage is named.

use super::*;
use crate::crdt::EncodedCommit;
use crate::crdt::authorship::{Verdict, grant_write, revoke_write};
use crate::crdt::commit::{Commit, Transaction};
use crate::identity::Keypair;

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn note(i: u64) -> Transaction {
    Transaction {
        op: "add-note".into(),
        params: Id::of(&i.to_le_bytes()),
    }
}

/// A signed commit by `by` on `parents`.
fn commit(parents: &[Id], by: &Keypair, txs: Vec<Transaction>) -> EncodedCommit {
    Commit {
        parents: parents.to_vec(),
        transactions: txs,
        author: by.public().to_string(),
        ts: 1,
    }
    .encode()
    .signed(by)
}

/// An owned CDVCS's history: the owner writes, grants `b`, `b` writes, the owner revokes `b`
/// and writes on; answers the commits in order (the root first) and the last.
fn history(owner: &Keypair, b: &Keypair, len: u64) -> Vec<EncodedCommit> {
    let crdt = CrdtKey::new(owner.public().to_string(), uuid::Uuid::from_u128(9));
    let mut out = vec![Commit::root(&crdt)];
    let mut tip = out[0].id;
    for i in 0..len {
        let c = match i {
            3 => commit(&[tip], owner, vec![grant_write(&b.public()).0]),
            4..=6 => commit(&[tip], b, vec![note(i)]),
            7 => commit(&[tip], owner, vec![revoke_write(&b.public()).0]),
            _ => commit(&[tip], owner, vec![note(i)]),
        };
        tip = c.id;
        out.push(c);
    }
    out
}

/// Stores `commits` of `crdt` (the root first), with the writer rule's records when `records`.
fn store_of(crdt: &CrdtKey, commits: &[EncodedCommit], records: bool) -> Store {
    let store = Store::in_memory().expect("store");
    let (_, batch) = crate::store::cdvcs::create(crdt);
    store.write(&batch).expect("create");
    let mut rule = Writers::new(crdt);
    let mut all = Vec::new();
    for c in commits {
        let who = authorship(crdt, &c.id, &c.commit, c.signature.as_ref()).expect("signed");
        all.push((c.id, rule.judge(&c.id, &c.commit, who).expect("valid")));
    }
    let tip = commits.last().expect("commits").id;
    let mut batch = crate::store::cdvcs::commits_batch(crdt, &commits[1..], &[tip]);
    if records {
        batch.merge(records_batch(crdt, &all));
    }
    store.write(&batch).expect("write");
    store
}

fn owned(owner: &Keypair) -> CrdtKey {
    CrdtKey::new(owner.public().to_string(), uuid::Uuid::from_u128(9))
}

fn verdict(rule: &mut Writers, at: Id, who: &Keypair) -> Verdict {
    rule.verdict(&[at], &who.public())
        .expect("records readable")
        .expect("judged")
}

#[test]
fn a_rule_opened_on_stored_records_judges_as_the_rule_that_wrote_them() {
    let (owner, b, c) = (key(1), key(2), key(3));
    let crdt = owned(&owner);
    let commits = history(&owner, &b, 12);
    let store = store_of(&crdt, &commits, true);
    let state = crate::store::graph::open(&store, &crdt)
        .expect("open")
        .expect("stored");
    let mut rule = open(&store, &crdt, &state)
        .expect("writers")
        .cache_records(1);
    // At each commit, as the definition says: b writes after the grant until the revoke.
    for (i, at) in commits.iter().enumerate() {
        let expected = if (4..=7).contains(&i) {
            Verdict::Writer
        } else {
            Verdict::NotAWriter
        };
        assert_eq!(verdict(&mut rule, at.id, &b), expected, "b at commit {i}");
        assert_eq!(verdict(&mut rule, at.id, &c), Verdict::NotAWriter);
        assert_eq!(verdict(&mut rule, at.id, &owner), Verdict::Owner);
    }
    // A new commit by b on a commit after the grant is judged from the stored records.
    let on = commit(&[commits[5].id], &b, vec![note(99)]);
    let who = authorship(&crdt, &on.id, &on.commit, on.signature.as_ref()).expect("signed");
    let record = rule
        .judge(&on.id, &on.commit, who)
        .expect("b may write there");
    assert_eq!(
        record.latest,
        vec![commits[4].id],
        "the grant is the latest access"
    );
    let late = commit(&[commits[9].id], &b, vec![note(100)]);
    let who = authorship(&crdt, &late.id, &late.commit, late.signature.as_ref()).expect("signed");
    assert!(matches!(
        rule.judge(&late.id, &late.commit, who),
        Err(RuleError::Refused(
            crate::crdt::authorship::Refusal::NotAWriter { .. }
        ))
    ));
}

#[test]
fn a_cdvcs_stored_without_records_gets_them_once_and_judges_the_same() {
    let (owner, b) = (key(1), key(2));
    let crdt = owned(&owner);
    let commits = history(&owner, &b, 30);
    let with = store_of(&crdt, &commits, true);
    let without = store_of(&crdt, &commits, false);
    let state = crate::store::graph::open(&without, &crdt)
        .expect("open")
        .expect("stored");
    let record_of = |store: &Store, id: &Id| {
        store
            .get_state(&keys::writer_record(&crdt.user, &crdt.id, id))
            .expect("read")
    };
    assert!(record_of(&without, &commits[30].id).is_none());
    open(&without, &crdt, &state).expect("records written");
    for c in &commits[1..] {
        assert_eq!(
            record_of(&without, &c.id),
            record_of(&with, &c.id),
            "the record of {} as the writing rule made it",
            c.id
        );
    }
    // An interrupted run (every record but the head's) is finished by the next.
    let mut batch = WriteBatch::new();
    batch.delete_state(keys::writer_record(&crdt.user, &crdt.id, &commits[30].id));
    without.write(&batch).expect("delete");
    open(&without, &crdt, &state).expect("finished");
    assert_eq!(
        record_of(&without, &commits[30].id),
        record_of(&with, &commits[30].id)
    );
}

#[test]
fn a_damaged_record_is_named_not_judged_around() {
    let (owner, b) = (key(1), key(2));
    let crdt = owned(&owner);
    let commits = history(&owner, &b, 6);
    let store = store_of(&crdt, &commits, true);
    let state = crate::store::graph::open(&store, &crdt)
        .expect("open")
        .expect("stored");
    let mut batch = WriteBatch::new();
    batch.put_state(
        keys::writer_record(&crdt.user, &crdt.id, &commits[5].id),
        b"\xc1 not a record".to_vec(),
    );
    store.write(&batch).expect("damage");
    let mut rule = open(&store, &crdt, &state).expect("the head's record is fine");
    let err = rule
        .verdict(&[commits[5].id], &b.public())
        .expect_err("a damaged record is no verdict");
    let chain = replikativ_actors::error_chain(&err);
    assert!(
        chain.contains(&commits[5].id.to_string()) && chain.contains("damaged"),
        "{chain}"
    );
}
