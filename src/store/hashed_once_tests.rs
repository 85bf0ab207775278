//! The sync session and the store together: each value and commit received is hashed once,
//! from the frame to the store batch (moved here from the pure core, which has no store).

use uuid::Uuid;

use crate::crdt::CrdtKey;
use crate::crdt::{Commit, Transaction};
use crate::id::Id;
use crate::id::hashes_on_this_thread;
use crate::identity::Keypair;
use crate::protocol::Codec;
use crate::protocol::{Blob, Message};
use crate::store::{WriteBatch, cdvcs};
use crate::sync::{Effect, Graphs, SyncSession};
use crate::sync::{GraphView, SessionConfig, SyncLimits};
use crate::sync::{Handshake, Role};

/// A graph holding the root only, built before counting.
struct Root(Id);

impl GraphView for Root {
    fn contains(&self, id: &Id) -> bool {
        *id == self.0
    }
    fn heads(&self) -> Vec<Id> {
        vec![self.0]
    }
    fn commits_between(&self, _: &[Id], _: &[Id]) -> Vec<Id> {
        Vec::new()
    }
    fn ancestry_sample(&self, _: &[Id], _: &[Id], _: usize) -> Vec<Id> {
        Vec::new()
    }
}

impl Graphs for Root {
    fn graph(&self, _: &CrdtKey) -> Option<&dyn GraphView> {
        Some(self)
    }
}

#[test]
fn each_received_value_and_commit_is_hashed_once_from_frame_to_store_batch() {
    let key = CrdtKey::new("me@x.org", Uuid::from_u128(1));
    let graphs = Root(Commit::root(&key).id);
    let mut parent = graphs.0;
    let (mut values, mut commits) = (Vec::new(), Vec::new());
    for i in 0..3 {
        let value = Blob::new(format!("value {i}").into_bytes());
        let c = Commit {
            parents: vec![parent],
            transactions: vec![Transaction {
                op: "add".into(),
                params: value.id,
            }],
            author: "a".into(),
            ts: i,
        }
        .encode();
        parent = c.id;
        values.push(value);
        commits.push(Blob::new(c.bytes));
    }
    let codec = Codec::default();
    let frames = [
        Message::Values {
            crdt: key.clone(),
            values,
        },
        Message::Commits {
            crdt: key.clone(),
            commits,
            signatures: Vec::new(),
        },
    ]
    .map(|m| codec.encode(&m).expect("encodes"));
    let mut session = SyncSession::new(SessionConfig {
        handshake: Handshake::new(Keypair::from_seed([7; 32]), Role::Dialler, [1; 32], None),
        subscriptions: vec![key.clone()],
        limits: SyncLimits::default(),
    });
    let Some(Effect::Send(hello)) = session.start().pop() else {
        panic!("no hello");
    };
    let mut peer = Handshake::new(Keypair::from_seed([8; 32]), Role::Acceptor, [2; 32], None);
    let Ok(Some(peer_proof)) = peer.on_message(&hello) else {
        panic!("no proof from the peer");
    };
    session.on_message(peer.hello(), &graphs);
    let effects = session.on_message(peer_proof, &graphs);
    assert!(matches!(effects[..], [Effect::Authenticated { .. }]));
    session.authorize(crate::sync::Rights::ALL, &graphs);
    session.on_message(
        Message::Subscribed {
            crdts: vec![key.clone()],
        },
        &graphs,
    );

    let before = hashes_on_this_thread();
    let mut effects = Vec::new();
    for frame in &frames {
        let received = codec.receive(frame).expect("honest frame");
        effects.extend(session.on_received(received, &graphs));
    }
    let Some(Effect::Apply { batch, .. }) = effects.pop() else {
        panic!("expected an apply, got {effects:?}");
    };
    assert_eq!((batch.values.len(), batch.commits.len()), (3, 3));
    assert!(batch.values_to_check.is_empty());
    // What the replica writes for a remote batch: the commits, then the values.
    let mut write = cdvcs::commits_batch(&key, &batch.commits, &[parent]);
    for value in batch.values {
        write.put_verified_value(value);
    }
    assert_eq!(
        hashes_on_this_thread() - before,
        6,
        "six received blobs, each hashed once"
    );
    let mut expected = WriteBatch::new();
    for c in &batch.commits {
        expected.put_value(c.bytes.clone());
    }
    assert!(
        expected
            .value_ids()
            .all(|id| write.value_ids().any(|w| w == id))
    );
    assert_eq!(write.value_ids().count(), 6);
}
