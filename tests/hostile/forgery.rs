//! A peer with write rights that lies about history (DESIGN §11, signed history): it
//! re-signs a commit in the owner's name with its own key, writes as a key the owner never
//! granted, or strips a signature. The server refuses each batch, names the commit and why,
//! and stores nothing of it, while its genuine history stays as it was.

use std::time::Duration;

use crate::common::nodes::{commit_count, heads, op, url};
use crate::common::raw::RawClient;
use replikativ::Node;
use replikativ::crdt::authorship::sign;
use replikativ::crdt::{Commit, CrdtKey, Transaction};
use replikativ::id::Id;
use replikativ::identity::Keypair;
use replikativ::protocol::message::FixedBytes;
use replikativ::protocol::{Blob, Message};

const T: Duration = Duration::from_secs(30);

/// A commit on `parent` naming `author`, carrying one `add` of `params`.
fn commit(parent: Id, author: &str, params: Id) -> replikativ::crdt::EncodedCommit {
    Commit {
        parents: vec![parent],
        transactions: vec![Transaction {
            op: "add".into(),
            params,
        }],
        author: author.to_owned(),
        ts: 7,
    }
    .encode()
}

#[test]
fn forged_misattributed_and_stripped_commits_are_refused_and_nothing_is_stored() {
    let owner = Keypair::from_seed([31; 32]);
    let mallory = Keypair::from_seed([32; 32]);
    let key = CrdtKey::new(owner.public().to_string(), uuid::Uuid::new_v4());
    actix_rt::System::new().block_on(async {
        let node = Node::builder()
            .key(owner.clone())
            .listen("127.0.0.1:0")
            .cdvcs(key.clone())
            .start()
            .await
            .expect("start");
        let stage = node.stage();
        let genuine = stage.transact(&key, vec![op(1)]).await.expect("commit");
        let before = (heads(&node, &key), commit_count(&node, &key));
        let (_, params) = op(2);
        let params_id = Id::of(&params);
        let as_owner = commit(genuine, &owner.public().to_string(), params_id);
        let as_mallory = commit(genuine, &mallory.public().to_string(), params_id);
        let cases = [
            // Re-signed: the owner's name, Mallory's signature.
            (
                "a forged signature",
                &as_owner,
                Some(sign(&mallory, &as_owner.id)),
                "signature",
            ),
            // Mallory's own commit: signed, but Mallory may not write this CDVCS.
            (
                "a non-writer",
                &as_mallory,
                Some(sign(&mallory, &as_mallory.id)),
                "not a writer",
            ),
            // Stripped: the owner's name, no signature at all.
            ("a stripped signature", &as_owner, None, "no signature"),
        ];
        for (what, c, signature, why) in cases {
            let mut raw = RawClient::connect(&url(&node)).await;
            raw.handshake(&mallory).await;
            assert!(
                raw.send(&Message::Subscribe {
                    crdts: vec![key.clone()]
                })
                .await
            );
            raw.expect(T, |m| matches!(m, Message::Heads { .. })).await;
            raw.send(&Message::Values {
                crdt: key.clone(),
                values: vec![Blob::new(params.clone())],
            })
            .await;
            raw.send(&Message::Commits {
                crdt: key.clone(),
                commits: vec![Blob::new(c.bytes.clone())],
                signatures: vec![signature.map(FixedBytes)],
            })
            .await;
            let (error, reason) = raw.until_closed(T).await;
            let told = error.map(|(_, m)| m).unwrap_or(reason);
            assert!(
                told.contains(why) && told.contains(&c.id.to_string()),
                "{what}: the refusal names the commit and why: {told}"
            );
            assert_eq!(
                (heads(&node, &key), commit_count(&node, &key)),
                before,
                "{what}: nothing of it was stored"
            );
            assert!(
                node.store().get_value(&c.id).expect("read").is_none(),
                "{what}: the commit record was not stored"
            );
        }
        // The owner still writes.
        stage
            .transact(&key, vec![op(3)])
            .await
            .expect("the owner writes on");
        node.shutdown().await;
    });
}
