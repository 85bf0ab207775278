//! Strategies: which siblings are restarted with a failing child.

use std::time::Duration;

use crate::common::*;
use replikativ_actors::{
    BackoffPolicy, ChildSpec, EventKind, Restart, Strategy, Supervisor, SupervisorHandle,
};

async fn three_workers(strategy: Strategy, middle: Restart) -> (SupervisorHandle, Log) {
    let log = new_log();
    let mut sup = Supervisor::new("root")
        .strategy(strategy)
        .intensity(10, Duration::from_secs(1))
        .backoff(BackoffPolicy::none());
    for (name, restart) in [
        ("a", Restart::Permanent),
        ("b", middle),
        ("c", Restart::Permanent),
    ] {
        let log = log.clone();
        sup = sup.child(ChildSpec::actor(name, move || Worker::new(name, &log)).restart(restart));
    }
    (sup.start().await.expect("start"), log)
}

async fn generations(sup: &SupervisorHandle) -> Vec<(String, u64)> {
    sup.which_children()
        .await
        .expect("answers")
        .into_iter()
        .map(|c| (c.id.to_string(), c.generation))
        .collect()
}

#[actix_rt::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let (sup, log) = three_workers(Strategy::OneForOne, Restart::Permanent).await;
    let mut events = sup.subscribe();
    running(&sup, "b", 1).await.do_send(Exit::Fail);
    restarted(&mut events, "b").await;
    assert_eq!(
        generations(&sup).await,
        [("a".into(), 1), ("b".into(), 2), ("c".into(), 1)]
    );
    assert_eq!(*log.lock().expect("log"), ["b"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn one_for_all_restarts_every_sibling() {
    let (sup, log) = three_workers(Strategy::OneForAll, Restart::Permanent).await;
    let mut events = sup.subscribe();
    running(&sup, "b", 1).await.do_send(Exit::Fail);
    restarted(&mut events, "c").await;
    assert_eq!(
        generations(&sup).await,
        [("a".into(), 2), ("b".into(), 2), ("c".into(), 2)]
    );
    // b exited by itself; the others were stopped in reverse order.
    assert_eq!(*log.lock().expect("log"), ["b", "c", "a"]);
    for name in ["a", "b", "c"] {
        assert_eq!(
            running(&sup, name, 2)
                .await
                .send(Ping)
                .await
                .expect("answers"),
            name
        );
    }
    // The stopped bystanders' exit notices are late and ignored: nothing restarts again.
    let counts = sup.which_children().await.expect("answers");
    assert_eq!(counts.iter().map(|c| c.restarts).sum::<u32>(), 1);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn rest_for_one_restarts_only_later_siblings() {
    let (sup, log) = three_workers(Strategy::RestForOne, Restart::Permanent).await;
    let mut events = sup.subscribe();
    running(&sup, "b", 1).await.do_send(Exit::Panic);
    restarted(&mut events, "c").await;
    assert_eq!(
        generations(&sup).await,
        [("a".into(), 1), ("b".into(), 2), ("c".into(), 2)]
    );
    assert_eq!(*log.lock().expect("log"), ["b", "c"]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn temporary_bystander_is_not_restarted_under_one_for_all() {
    let (sup, _log) = three_workers(Strategy::OneForAll, Restart::Temporary).await;
    let mut events = sup.subscribe();
    running(&sup, "a", 1).await.do_send(Exit::Fail);
    expect_event(
        &mut events,
        "b terminated",
        |e| matches!(&e.kind, EventKind::ChildTerminated { child, .. } if child == "b"),
    )
    .await;
    restarted(&mut events, "c").await;
    assert_eq!(generations(&sup).await, [("a".into(), 2), ("c".into(), 2)]);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn temporary_bystander_is_not_restarted_under_rest_for_one() {
    let (sup, _log) = three_workers(Strategy::RestForOne, Restart::Temporary).await;
    let mut events = sup.subscribe();
    running(&sup, "a", 1).await.do_send(Exit::Fail);
    restarted(&mut events, "c").await;
    assert_eq!(generations(&sup).await, [("a".into(), 2), ("c".into(), 2)]);
    sup.shutdown().await;
}
