//! Restart intensity and escalation, with an injected clock.

use std::time::Duration;

use crate::common::*;
use replikativ_actors::{
    BackoffPolicy, ChildSpec, ChildState, EventKind, ExitReason, ManualClock, Strategy, Supervisor,
};

#[actix_rt::test]
async fn one_for_one_with_max_two_restarts_survives_two_crashes_and_escalates_on_the_third() {
    let log = new_log();
    let sup = Supervisor::new("root")
        .intensity(2, Duration::from_secs(5))
        .backoff(BackoffPolicy::none())
        .clock(ManualClock::new())
        .child(ChildSpec::actor("w", move || Worker::new("w", &log)))
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    for generation in 1..=2 {
        running(&sup, "w", generation).await.do_send(Exit::Fail);
        restarted(&mut events, "w").await;
    }
    running(&sup, "w", 3).await.do_send(Exit::Fail);
    let event = expect_event(&mut events, "IntensityExceeded", |e| {
        matches!(e.kind, EventKind::IntensityExceeded { .. })
    })
    .await;
    match event.kind {
        EventKind::IntensityExceeded {
            restarts_in_window,
            max_restarts,
            ..
        } => {
            assert_eq!((restarts_in_window, max_restarts), (3, 2));
        }
        other => panic!("unexpected {other:?}"),
    }
    let reason = tokio::time::timeout(DEADLINE, sup.join())
        .await
        .expect("supervisor exits");
    let chain = reason.chain().join(" | ");
    assert!(matches!(reason, ExitReason::Failed(_)), "{chain}");
    assert!(chain.contains("restart intensity exceeded"), "{chain}");
    assert!(chain.contains("worker w broke"), "{chain}");
}

#[actix_rt::test]
async fn crashes_spaced_wider_than_the_period_never_exceed_intensity() {
    let clock = ManualClock::new();
    let log = new_log();
    let sup = Supervisor::new("root")
        .intensity(1, Duration::from_secs(5))
        .backoff(BackoffPolicy::none())
        .clock(clock.clone())
        .child(ChildSpec::actor("w", move || Worker::new("w", &log)))
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    for generation in 1..=6 {
        running(&sup, "w", generation).await.do_send(Exit::Fail);
        restarted(&mut events, "w").await;
        clock.advance(Duration::from_secs(6));
    }
    assert!(sup.is_running());
    assert_eq!(child(&sup, "w").await.expect("listed").restarts, 6);
    sup.shutdown().await;
}

#[actix_rt::test]
async fn escalation_under_every_strategy_when_a_child_start_keeps_failing() {
    for strategy in [
        Strategy::OneForOne,
        Strategy::OneForAll,
        Strategy::RestForOne,
    ] {
        let log = new_log();
        let flaky = Flaky::default();
        let factory = flaky.clone();
        let flaky_log = log.clone();
        let sup = Supervisor::new("root")
            .strategy(strategy)
            .intensity(3, Duration::from_secs(5))
            .backoff(BackoffPolicy::none())
            .clock(ManualClock::new())
            .child(ChildSpec::actor("a", {
                let log = log.clone();
                move || Worker::new("a", &log)
            }))
            .child(ChildSpec::new("flaky", move || {
                factory.call(1).map(|()| Worker::new("flaky", &flaky_log))
            }))
            .start()
            .await
            .expect("start");
        let mut events = sup.subscribe();
        running(&sup, "flaky", 1).await.do_send(Exit::Fail);
        expect_event(
            &mut events,
            "ChildStartFailed",
            |e| matches!(&e.kind, EventKind::ChildStartFailed { child, .. } if child == "flaky"),
        )
        .await;
        let reason = tokio::time::timeout(DEADLINE, sup.join())
            .await
            .expect("escalates");
        let chain = reason.chain().join(" | ");
        assert!(
            chain.contains("restart intensity exceeded"),
            "{strategy}: {chain}"
        );
        assert!(chain.contains("cannot open db"), "{strategy}: {chain}");
        // The first start plus one failed attempt per restart allowed and one more.
        assert_eq!(flaky.calls(), 1 + 3, "{strategy}");
    }
}

#[actix_rt::test]
async fn child_stuck_restarting_shows_as_restarting_can_be_terminated_and_supervisor_still_stops() {
    let flaky = Flaky::default();
    let factory = flaky.clone();
    let log = new_log();
    let sup = Supervisor::new("root")
        .intensity(100, Duration::from_secs(1))
        .child(
            ChildSpec::new("stuck", move || {
                factory.call(1).map(|()| Worker::new("stuck", &log))
            })
            // An hour of backoff: the restart stays pending for the whole test.
            .backoff(BackoffPolicy::exponential(
                Duration::from_secs(3600),
                Duration::from_secs(3600),
            )),
        )
        .start()
        .await
        .expect("start");
    running(&sup, "stuck", 1).await.do_send(Exit::Fail);
    let info = eventually("stuck restarting", || async {
        child(&sup, "stuck")
            .await
            .filter(|c| c.state == ChildState::Restarting)
    })
    .await;
    assert_eq!(info.restarts, 1);
    assert_eq!(sup.count_children().await.expect("answers").restarting, 1);
    sup.terminate_child("stuck").await.expect("terminated");
    assert_eq!(
        child(&sup, "stuck").await.expect("kept").state,
        ChildState::Stopped
    );
    let reason = tokio::time::timeout(DEADLINE, sup.shutdown())
        .await
        .expect("stops");
    assert!(matches!(reason, ExitReason::Shutdown));
}
