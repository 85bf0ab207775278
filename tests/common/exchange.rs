//! Two stopped stores brought in sync over a real websocket, in-process: for checks of what
//! replicas agree on once they have exchanged what they hold.

use std::path::Path;
use std::time::Duration;

use replikativ::Node;
use replikativ::crdt::CrdtKey;
use replikativ::identity::Keypair;
use replikativ::node::StoreLocation;

use super::wait::wait_until;

/// A node on store `a` (key `a_key`) listens, a node on store `b` (key `b_key`) connects, both
/// holding `crdt`; returns once each holds every head the other had when they met (and
/// everything `a` then had, `b` holds too).
pub fn exchange(a: &Path, a_key: Keypair, b: &Path, b_key: Keypair, crdt: &CrdtKey) {
    actix_rt::System::new().block_on(async {
        let server = Node::builder()
            .name("a")
            .store(StoreLocation::Dir(a.to_path_buf()))
            .key(a_key)
            .listen("127.0.0.1:0")
            .cdvcs(crdt.clone())
            .start()
            .await
            .expect("start the node on a");
        let a_heads = server.stage().heads(crdt).await.expect("heads of a");
        let addr = server.listen_addr().expect("listening");
        let client = Node::builder()
            .name("b")
            .store(StoreLocation::Dir(b.to_path_buf()))
            .key(b_key)
            .connect(format!("ws://{addr}/"))
            .cdvcs(crdt.clone())
            .start()
            .await
            .expect("start the node on b");
        let b_heads = client.stage().heads(crdt).await.expect("heads of b");
        for (node, wanted, what) in [
            (&server, &b_heads, "a holds b's heads"),
            (&client, &a_heads, "b holds a's heads"),
        ] {
            let replica = node.replica(crdt).expect("replica");
            wait_until(
                what,
                Duration::from_secs(60),
                || {
                    let state = replica.state();
                    let held = state.read().expect("state");
                    wanted.iter().all(|h| held.contains(h))
                },
                || format!("waiting for {wanted:?}"),
            )
            .await;
        }
        client.shutdown().await;
        server.shutdown().await;
    });
    // The store-writer threads let go of the files a moment after the nodes stop (they are
    // not joined): wait until both stores can be opened again.
    for dir in [a, b] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match replikativ::store::Store::open(dir) {
                Ok(_) => break,
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "{}: {e}",
                        dir.display()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}
