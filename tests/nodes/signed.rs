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
