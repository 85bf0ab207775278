//! Signed history on one node (DESIGN §11): the node's commits name its key as author and
//! carry its signature of their id, stored beside the commit; merges without transactions are
//! unsigned.

use crate::common::stage_support::{fresh_key, note};
use replikativ::Node;
use replikativ::crdt::authorship::{Authorship, authorship};
use replikativ::identity::Keypair;
use replikativ::node::StoreLocation;
use replikativ::store::cdvcs::load_commit;

#[test]
fn a_nodes_commits_are_signed_by_its_key_and_the_signature_is_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let signer = Keypair::from_seed([9; 32]);
    actix_rt::System::new().block_on(async {
        let node = Node::builder()
            .store(StoreLocation::Dir(dir.path().to_path_buf()))
            .key(signer.clone())
            .start()
            .await
            .expect("start");
        assert_eq!(node.public_key(), signer.public());
        let stage = node.stage();
        let key = fresh_key();
        stage.create_cdvcs(&key).await.expect("create");
        let id = stage.transact(&key, vec![note("n")]).await.expect("commit");
        let stored = load_commit(node.store(), &id)
            .expect("read")
            .expect("stored");
        assert_eq!(stored.commit.commit.author, signer.public().to_string());
        let signature = stored.commit.signature.expect("signed");
        assert_eq!(
            authorship(&key, &id, &stored.commit.commit, Some(&signature)),
            Ok(Authorship::Signed(signer.public()))
        );
        // Another key's signature of the same commit does not hold.
        let other = Keypair::from_seed([8; 32]).sign(&id.as_bytes()[..]);
        assert!(authorship(&key, &id, &stored.commit.commit, Some(&other)).is_err());
        node.shutdown().await;
    });
}

/// Grants are the owner's system operations: a non-owner cannot grant, users cannot commit
/// them as ordinary transactions, and no realizer handler ever sees them.
#[test]
fn grants_are_the_owners_and_never_reach_a_realizer() {
    use crate::common::stage_support::memory_realizer;
    use crate::common::wait::eventually;
    use replikativ::crdt::CrdtKey;
    use replikativ::crdt::authorship::GRANT_WRITE;
    use replikativ::realize::MemorySink;
    use replikativ::realize::realizer::ConflictPolicy;
    use replikativ::stage::StageError;
    use std::time::Duration;

    let owner = Keypair::from_seed([1; 32]);
    let writer = Keypair::from_seed([2; 32]);
    let key = CrdtKey::new(owner.public().to_string(), uuid::Uuid::new_v4());
    let sink = MemorySink::new();
    actix_rt::System::new().block_on(async {
        let node = Node::builder()
            .key(owner.clone())
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let stage = node.stage();
        stage.create_cdvcs(&key).await.expect("create");
        let smuggled = stage
            .transact(&key, vec![(GRANT_WRITE.to_owned(), b"x".to_vec())])
            .await;
        assert!(
            matches!(smuggled, Err(StageError::SystemOp { .. })),
            "{smuggled:?}"
        );
        let first = stage
            .transact(&key, vec![note("before")])
            .await
            .expect("n1");
        let grant = stage
            .grant_write(&key, &writer.public())
            .await
            .expect("the owner grants");
        let last = stage.transact(&key, vec![note("after")]).await.expect("n2");
        let realizer = node.realizer("mem").expect("realizer");
        eventually(
            "the realizer applies every commit",
            Duration::from_secs(20),
            || [first, grant, last].iter().all(|c| realizer.is_applied(c)),
        )
        .await;
        let ops: Vec<String> = sink.snapshot().ops.into_iter().map(|o| o.op).collect();
        assert_eq!(ops, ["note", "note"], "the grant reached no handler");
        node.shutdown().await;

        // Another node is not the owner.
        let other = Node::builder()
            .key(writer.clone())
            .start()
            .await
            .expect("start");
        other.stage().create_cdvcs(&key).await.expect("create");
        let refused = other.stage().grant_write(&key, &writer.public()).await;
        assert!(
            matches!(refused, Err(StageError::NotOwner { .. })),
            "{refused:?}"
        );
        other.shutdown().await;
    });
}

/// A realized tweet names the key that signed its commit.
#[test]
fn a_realized_tweet_names_the_key_that_signed_its_commit() {
    use crate::common::wait::eventually;
    use replikativ::node::RealizerSpec;
    use replikativ::realize::realizer::ConflictPolicy;
    use replikativ::realize::{Sink, SinkError};
    use replikativ::tweets::{ADD_TWEET, encode_params, open_sink};
    use std::sync::Arc;
    use std::time::Duration;

    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("t.sqlite");
    let signer = Keypair::from_seed([4; 32]);
    let key = fresh_key();
    let path = db.clone();
    let spec = RealizerSpec {
        name: "sqlite".into(),
        key: key.clone(),
        open: Arc::new(move || -> Result<Box<dyn Sink>, SinkError> {
            Ok(Box::new(open_sink(&path)?))
        }),
        policy: ConflictPolicy::Wait,
    };
    actix_rt::System::new().block_on(async {
        let node = Node::builder()
            .key(signer.clone())
            .realize(spec)
            .start()
            .await
            .expect("start");
        let stage = node.stage();
        stage.create_cdvcs(&key).await.expect("create");
        let tweet = serde_json::json!({"id": "42", "text": "signed"});
        let id = stage
            .transact(&key, vec![(ADD_TWEET.to_owned(), encode_params(&tweet))])
            .await
            .expect("commit");
        let realizer = node.realizer("sqlite").expect("realizer");
        eventually("the tweet is realized", Duration::from_secs(20), || {
            realizer.is_applied(&id)
        })
        .await;
        node.shutdown().await;
    });
    let conn = rusqlite::Connection::open(&db).expect("open");
    let author: String = conn
        .query_row(
            "SELECT commit_author FROM tweets WHERE id = '42'",
            [],
            |r| r.get(0),
        )
        .expect("the tweet");
    assert_eq!(author, signer.public().to_string());
}
