//! Ordered start with rollback, reverse-order shutdown and shutdown policies.

mod common;

use std::time::Duration;

use common::*;
use replikativ_actors::{ChildSpec, EventKind, ExitReason, Shutdown, SupervisionError, Supervisor};

#[actix_rt::test]
async fn shutdown_stops_children_in_reverse_start_order() {
    let log = new_log();
    let mut sup = Supervisor::new("root");
    for name in ["a", "b", "c", "d"] {
        let log = log.clone();
        sup = sup.child(ChildSpec::actor(name, move || Worker::new(name, &log)));
    }
    let sup = sup.start().await.expect("start");
    let reason = sup.shutdown().await;
    assert!(matches!(reason, ExitReason::Shutdown));
    assert_eq!(*log.lock().expect("log"), ["d", "c", "b", "a"]);
    assert!(!sup.is_running());
}

#[actix_rt::test]
async fn child_that_ignores_shutdown_is_killed_after_its_timeout() {
    tokio::time::pause();
    let log = new_log();
    let stubborn_log = log.clone();
    let sup = Supervisor::new("root")
        .child(ChildSpec::actor("polite", {
            let log = log.clone();
            move || Worker::new("polite", &log)
        }))
        .child(
            ChildSpec::actor("stubborn", move || Worker {
                ignore_shutdown: true,
                ..Worker::new("stubborn", &stubborn_log)
            })
            .shutdown(Shutdown::Timeout(Duration::from_secs(30))),
        )
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    let started = tokio::time::Instant::now();
    let reason = sup.shutdown().await;
    assert!(matches!(reason, ExitReason::Shutdown));
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "waited the timeout first"
    );
    let killed = expect_event(
        &mut events,
        "stubborn terminated",
        |e| matches!(&e.kind, EventKind::ChildTerminated { child, .. } if child == "stubborn"),
    )
    .await;
    assert!(matches!(killed.reason(), Some(ExitReason::Killed)));
    let polite = expect_event(
        &mut events,
        "polite terminated",
        |e| matches!(&e.kind, EventKind::ChildTerminated { child, .. } if child == "polite"),
    )
    .await;
    assert!(matches!(polite.reason(), Some(ExitReason::Shutdown)));
    assert_eq!(*log.lock().expect("log"), ["stubborn", "polite"]);
}

#[actix_rt::test]
async fn brutal_kill_does_not_ask_the_child() {
    let log = new_log();
    let sup = Supervisor::new("root")
        .child(
            ChildSpec::actor("stubborn", move || Worker {
                ignore_shutdown: true,
                ..Worker::new("stubborn", &log)
            })
            .shutdown(Shutdown::BrutalKill),
        )
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    tokio::time::timeout(DEADLINE, sup.shutdown())
        .await
        .expect("stops at once");
    let event = expect_event(&mut events, "terminated", |e| {
        matches!(e.kind, EventKind::ChildTerminated { .. })
    })
    .await;
    assert!(matches!(event.reason(), Some(ExitReason::Killed)));
}

#[actix_rt::test]
async fn start_rollback_names_the_failing_child_and_stops_the_started_ones() {
    let log = new_log();
    let later = Flaky::default();
    let later_calls = later.clone();
    let result = Supervisor::new("root")
        .child(ChildSpec::actor("a", {
            let log = log.clone();
            move || Worker::new("a", &log)
        }))
        .child(ChildSpec::actor("b", {
            let log = log.clone();
            move || Worker::new("b", &log)
        }))
        .child(ChildSpec::new("db", || Err::<Worker, _>(OpenFailed("db"))))
        .child(ChildSpec::actor("c", move || {
            let _ = later_calls.call(usize::MAX);
            Worker::new("c", &new_log())
        }))
        .start()
        .await;
    match result {
        Err(SupervisionError::StartFailed {
            supervisor,
            child,
            reason,
        }) => {
            assert_eq!(&*supervisor, "root");
            assert_eq!(child, "db");
            assert_eq!(reason.chain(), ["start failed", "cannot open db"]);
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("start must fail"),
    }
    assert_eq!(
        *log.lock().expect("log"),
        ["b", "a"],
        "rolled back in reverse order"
    );
    assert_eq!(
        later.calls(),
        0,
        "children after the failing one never start"
    );
}
