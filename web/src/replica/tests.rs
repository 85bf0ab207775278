//! The browser replica judges as a node's replica does, and reads back only what verifies.

use replikativ_core::crdt::authorship::Refusal;
use replikativ_core::crdt::{Commit, CrdtKey, EncodedCommit, Transaction};
use replikativ_core::id::{Id, Verified};
use replikativ_core::identity::Keypair;
use replikativ_core::sync::{VerifiedBatch, verify_stored};
use uuid::Uuid;

use super::{Replica, ReplicaError};

fn tweet(id: u32) -> Vec<u8> {
    let v =
        serde_json::json!({"id": id.to_string(), "text": format!("tweet number {id} about rust")});
    rmp_serde::to_vec(&v).expect("msgpack")
}

/// A commit of `tweets` on `parent`, authored and signed by `signer` (signed by `forger`
/// when given: the signature then is not the author's).
fn commit(
    parent: Id,
    tweets: &[u32],
    signer: &Keypair,
    forger: Option<&Keypair>,
) -> (EncodedCommit, Vec<Vec<u8>>) {
    let values: Vec<Vec<u8>> = tweets.iter().map(|t| tweet(*t)).collect();
    let c = Commit {
        parents: vec![parent],
        transactions: values
            .iter()
            .map(|v| Transaction {
                op: "add-tweet".into(),
                params: Id::of(v),
            })
            .collect(),
        author: signer.public().to_string(),
        ts: 1,
    }
    .encode()
    .signed(forger.unwrap_or(signer));
    (c, values)
}

/// A batch as the session hands it over, verified against `replica`'s graph.
fn batch(replica: &Replica, commits: &[(EncodedCommit, Vec<Vec<u8>>)]) -> VerifiedBatch {
    let signatures: Vec<_> = commits.iter().map(|(c, _)| c.signature).collect();
    let values = commits
        .iter()
        .flat_map(|(_, vs)| vs.iter().cloned().map(Verified::new))
        .collect();
    let commits = commits
        .iter()
        .map(|(c, _)| Verified::new(c.bytes.clone()))
        .collect();
    verify_stored(commits, &signatures, values, Vec::new(), replica.graph()).expect("verifies")
}

fn open_key() -> CrdtKey {
    CrdtKey::new("mail:tweets@example.org", Uuid::from_u128(42))
}

#[test]
fn a_signed_batch_is_kept_then_applied_and_reads_back_the_same() {
    let writer = Keypair::from_seed([1; 32]);
    let mut replica = Replica::new(open_key());
    let root = *replica.graph().heads().first().expect("the root");
    let first = commit(root, &[1, 2, 3], &writer, None);
    let second = commit(first.0.id, &[3, 4], &writer, None);
    let b = batch(&replica, &[first.clone(), second.clone()]);
    let pending = replica.check(b).expect("honest");
    assert_eq!(
        replica.tweets().count(),
        0,
        "nothing visible before it is durable"
    );
    let record = pending.record.clone();
    let applied = replica.apply(pending).expect("applies");
    assert_eq!(replica.tweets().count(), 4);
    // Handed over as they were committed: 3 + 2 transactions, tweet 3's value sent once.
    assert_eq!(applied.len(), 5);
    assert_eq!(applied[0].op, "add-tweet");
    assert_eq!(applied[0].author, writer.public().to_string());
    assert_eq!(applied[0].commit, first.0.id.to_hex());
    let params = applied[1].to_json()["params"].clone();
    assert_eq!(params["id"], "2");
    assert_eq!(replica.tweets().search("rust", 10).count, 4);
    assert_eq!(
        replica.graph().heads().iter().collect::<Vec<_>>(),
        [&second.0.id]
    );

    let mut reloaded = Replica::new(open_key());
    reloaded.restore(0, &record).expect("reads back");
    assert_eq!(reloaded.graph().heads(), replica.graph().heads());
    assert_eq!(reloaded.tweets().count(), 4);
    assert_eq!(reloaded.records(), 1);
}

#[test]
fn a_forged_signature_is_refused_and_nothing_is_applied() {
    let writer = Keypair::from_seed([1; 32]);
    let forger = Keypair::from_seed([2; 32]);
    let mut replica = Replica::new(open_key());
    let root = *replica.graph().heads().first().expect("the root");
    let forged = commit(root, &[1], &writer, Some(&forger));
    let b = batch(&replica, &[forged]);
    let err = replica.check(b).expect_err("forged");
    assert!(
        matches!(err, ReplicaError::Refused(Refusal::BadSignature { .. })),
        "{err}"
    );
    assert_eq!((replica.tweets().count(), replica.graph().len()), (0, 1));
}

#[test]
fn in_an_owned_cdvcs_only_the_owner_and_its_grantees_write() {
    let owner = Keypair::from_seed([3; 32]);
    let stranger = Keypair::from_seed([4; 32]);
    let key = CrdtKey::new(owner.public().to_string(), Uuid::from_u128(7));
    let mut replica = Replica::new(key);
    let root = *replica.graph().heads().first().expect("the root");
    let by_owner = commit(root, &[1], &owner, None);
    let b = batch(&replica, std::slice::from_ref(&by_owner));
    let pending = replica.check(b).expect("the owner writes");
    replica.apply(pending).expect("applies");
    let by_stranger = commit(by_owner.0.id, &[2], &stranger, None);
    let b = batch(&replica, &[by_stranger]);
    let err = replica.check(b).expect_err("a stranger may not");
    assert!(
        matches!(err, ReplicaError::Refused(Refusal::NotAWriter { .. })),
        "{err}"
    );
    assert_eq!(replica.tweets().count(), 1);
}

#[test]
fn a_param_neither_sent_nor_held_is_refused() {
    let writer = Keypair::from_seed([1; 32]);
    let mut replica = Replica::new(open_key());
    let root = *replica.graph().heads().first().expect("the root");
    let (c, _) = commit(root, &[9], &writer, None);
    let b = verify_stored(
        vec![Verified::new(c.bytes.clone())],
        &[c.signature],
        Vec::new(),
        Vec::new(),
        replica.graph(),
    )
    .expect("hashes verify");
    assert_eq!(b.values_to_check.len(), 1);
    let err = replica.check(b).expect_err("missing value");
    assert!(matches!(err, ReplicaError::MissingValue { .. }), "{err}");
}

#[test]
fn a_kept_record_that_was_tampered_with_is_refused_on_reload() {
    let writer = Keypair::from_seed([1; 32]);
    let mut replica = Replica::new(open_key());
    let root = *replica.graph().heads().first().expect("the root");
    let c = commit(root, &[1, 2], &writer, None);
    let b = batch(&replica, &[c]);
    let record = replica.check(b).expect("honest").record;
    // Every single-byte change of the record is refused or changes nothing it holds.
    let mut refused = 0;
    for at in (0..record.len()).step_by(7) {
        let mut bad = record.clone();
        bad[at] ^= 0x20;
        let mut reloaded = Replica::new(open_key());
        match reloaded.restore(0, &bad) {
            Err(_) => refused += 1,
            Ok(_) => {
                // A flip in framing that still decodes to the same content is harmless.
                assert_eq!(reloaded.graph().heads().clone(), {
                    let mut honest = Replica::new(open_key());
                    honest.restore(0, &record).expect("honest");
                    honest.graph().heads().clone()
                });
                assert_eq!(reloaded.tweets().count(), 2);
            }
        }
    }
    assert!(refused > 0, "some flips must be refused");
    assert!(
        Replica::new(open_key())
            .restore(0, b"not a record")
            .is_err(),
        "garbage is refused"
    );
}
