//! Ordered start with rollback, reverse-order shutdown and shutdown policies.

use std::time::Duration;

use crate::common::*;
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

/// Leaving `main` with a tree still running (no `shutdown()`) drops the runtime under it;
/// the supervisor's last stop then runs without a timer driver and must not panic.
#[test]
fn dropping_the_runtime_under_a_running_tree_does_not_panic() {
    // tokio catches a panic while it drops a task, so look at panics as they happen: any in
    // the library's own code is a bug (tests panic on purpose only in `tests/`).
    static LIBRARY_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info
            .location()
            .is_some_and(|l| l.file().contains("actors/src/"))
        {
            LIBRARY_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        previous(info);
    }));
    let log = new_log();
    let system = actix::System::new();
    let running = system.block_on(async {
        let slot = replikativ_actors::Slot::new();
        let sup = Supervisor::new("root")
            .child(ChildSpec::actor_in("a", slot.clone(), {
                let log = log.clone();
                move || Worker::new("a", &log)
            }))
            .start()
            .await
            .expect("start");
        // A restarted child is a task younger than its supervisor, as after any crash.
        let first = slot.get().expect("a runs");
        first.do_send(Exit::Fail);
        slot.wait_next(&first, Duration::from_secs(10))
            .await
            .expect("a restarted");
        sup.is_running()
    });
    assert!(running);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(system)));
    assert!(dropped.is_ok(), "dropping the runtime panicked");
    assert_eq!(
        LIBRARY_PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the library panicked while the runtime was dropped"
    );
}
