//! OR-Maps and registers on nodes, replicated as op logs over a CDVCS: concurrent updates on
//! two nodes that were apart converge to the same value on both once they connect.

use std::time::Duration;

use crate::common::nodes::{key, server, url, wait_converged};
use replikativ::node::{Node, StoreLocation};

const T: Duration = Duration::from_secs(60);

async fn standalone(k: &replikativ::crdt::CrdtKey) -> Node {
    Node::builder()
        .name("apart")
        .store(StoreLocation::Memory)
        .cdvcs(k.clone())
        .start()
        .await
        .expect("start node")
}

#[actix_rt::test]
async fn concurrent_assocs_on_two_nodes_keep_both_values_and_a_dissoc_removes_what_it_saw() {
    let k = key("mail:ormap@test");
    let a = server(&k).await;
    let b = standalone(&k).await;
    let (sa, sb) = (a.stage(), b.stage());
    sa.create_ormap(&k).await.expect("create");
    sa.ormap_assoc(&k, "color".into(), b"red".to_vec())
        .await
        .expect("assoc on a");
    sb.ormap_assoc(&k, "color".into(), b"blue".to_vec())
        .await
        .expect("assoc on b");
    sb.ormap_assoc(&k, "size".into(), b"xl".to_vec())
        .await
        .expect("assoc on b");

    sb.connect(&url(&a)).await.expect("connect");
    wait_converged(&a, &b, &k, T).await;
    for stage in [&sa, &sb] {
        let map = stage.ormap(&k).await.expect("read");
        let colors: Vec<&[u8]> = map
            .get(&"color".to_string())
            .into_iter()
            .map(|v| v.as_slice())
            .collect();
        assert_eq!(colors.len(), 2, "both concurrent values are kept");
        assert!(colors.contains(&&b"red"[..]) && colors.contains(&&b"blue"[..]));
        assert_eq!(map.get(&"size".to_string()), vec![&b"xl".to_vec()]);
    }

    // Two heads now; the next update merges them first and then commits.
    sa.ormap_dissoc(&k, "color")
        .await
        .expect("dissoc")
        .expect("something was removed");
    assert_eq!(sa.heads(&k).await.expect("heads").len(), 1);
    wait_converged(&a, &b, &k, T).await;
    for stage in [&sa, &sb] {
        let map = stage.ormap(&k).await.expect("read");
        assert!(
            map.get(&"color".to_string()).is_empty(),
            "dissoc removed both"
        );
        assert_eq!(map.get(&"size".to_string()).len(), 1);
    }
    assert_eq!(sb.ormap_dissoc(&k, "color").await.expect("dissoc"), None);
    a.shutdown().await;
    b.shutdown().await;
}

#[actix_rt::test]
async fn the_later_register_write_wins_on_both_nodes() {
    let k = key("mail:register@test");
    let a = server(&k).await;
    let b = standalone(&k).await;
    let (sa, sb) = (a.stage(), b.stage());
    sa.create_register(&k).await.expect("create");
    assert_eq!(sa.register(&k).await.expect("read"), None);
    sa.register_set(&k, b"first".to_vec()).await.expect("set a");
    // a's timestamp is at most the time its write returned; b's write must be a later
    // millisecond for the outcome to be decided by time, not by the writer-id tie-break.
    let first_done = replikativ::replica::now_ms();
    while replikativ::replica::now_ms() <= first_done {
        tokio::task::yield_now().await;
    }
    sb.register_set(&k, b"second".to_vec())
        .await
        .expect("set b");
    sb.connect(&url(&a)).await.expect("connect");
    wait_converged(&a, &b, &k, T).await;
    assert_eq!(
        sa.register(&k).await.expect("read"),
        Some(b"second".to_vec())
    );
    assert_eq!(
        sb.register(&k).await.expect("read"),
        Some(b"second".to_vec())
    );
    a.shutdown().await;
    b.shutdown().await;
}
