//! Nested trees: escalation between levels, paths, lookup by name and the printed tree.

use std::time::Duration;

use crate::common::*;
use replikativ_actors::{BackoffPolicy, ChildSpec, EventKind, ManualClock, Strategy, Supervisor};

fn subtree(name: &str, worker: &'static str, log: &Log) -> Supervisor {
    let log = log.clone();
    Supervisor::new(name)
        .strategy(Strategy::OneForOne)
        .intensity(1, Duration::from_secs(5))
        .backoff(BackoffPolicy::none())
        .child(
            ChildSpec::actor(worker, move || Worker::new(worker, &log))
                .name(format!("{worker}-svc")),
        )
}

#[actix_rt::test]
async fn subtree_exceeding_its_intensity_is_restarted_by_a_one_for_all_root_with_its_sibling() {
    let log = new_log();
    let root = Supervisor::new("node")
        .strategy(Strategy::OneForAll)
        .intensity(3, Duration::from_secs(5))
        .backoff(BackoffPolicy::none())
        .clock(ManualClock::new())
        .supervisor(subtree("left", "l", &log))
        .supervisor(subtree("right", "r", &log))
        .start()
        .await
        .expect("start");
    let mut events = root.subscribe();
    let left = root.supervisor("left").await.expect("left runs");
    assert_eq!(left.path(), "node/left");

    running(&left, "l", 1).await.do_send(Exit::Fail);
    restarted(&mut events, "l").await;
    running(&left, "l", 2).await.do_send(Exit::Fail);
    let exceeded = expect_event(&mut events, "IntensityExceeded", |e| {
        matches!(e.kind, EventKind::IntensityExceeded { .. })
    })
    .await;
    assert_eq!(&*exceeded.supervisor, "node/left");
    restarted(&mut events, "right").await;

    let gens: Vec<_> = root
        .which_children()
        .await
        .expect("answers")
        .into_iter()
        .map(|c| (c.id.to_string(), c.generation))
        .collect();
    assert_eq!(gens, [("left".into(), 2), ("right".into(), 2)]);
    let r = eventually("new right worker", || async {
        root.lookup_path::<Worker>("right/r-svc").await.ok()
    })
    .await;
    assert_eq!(r.send(Ping).await.expect("answers"), "r");
    root.shutdown().await;
}

#[actix_rt::test]
async fn tree_prints_every_level_and_counts_children() {
    let log = new_log();
    let root = Supervisor::new("node")
        .child(ChildSpec::actor("store", {
            let log = log.clone();
            move || Worker::new("store", &log)
        }))
        .supervisor(subtree("peers", "p", &log))
        .start()
        .await
        .expect("start");
    let tree = root.tree().await.expect("tree").to_string();
    assert!(tree.starts_with("node (one_for_one)\n"), "{tree}");
    assert!(
        tree.contains("├── store [permanent running, gen 1, restarts 0]"),
        "{tree}"
    );
    assert!(
        tree.contains("└── peers [permanent running, gen 1, restarts 0] (one_for_one)"),
        "{tree}"
    );
    assert!(
        tree.contains("    └── p [permanent running, gen 1, restarts 0]"),
        "{tree}"
    );
    let counts = root.count_children().await.expect("answers");
    assert_eq!(
        (
            counts.specs,
            counts.active,
            counts.supervisors,
            counts.workers
        ),
        (2, 2, 1, 1)
    );
    root.shutdown().await;
}
