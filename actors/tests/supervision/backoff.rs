//! Per-child restart backoff, observed through `RestartScheduled` events on paused time.

use std::time::Duration;

use crate::common::*;
use replikativ_actors::{BackoffPolicy, ChildSpec, EventKind, Supervisor};

#[actix_rt::test]
async fn backoff_delays_grow_are_capped_and_reset_after_stable_uptime() {
    tokio::time::pause();
    let log = new_log();
    let policy = BackoffPolicy::exponential(Duration::from_millis(100), Duration::from_millis(400))
        .jitter(0.0)
        .reset_after(Duration::from_secs(10));
    let sup = Supervisor::new("root")
        .intensity(100, Duration::from_secs(1))
        .child(ChildSpec::actor("w", move || Worker::new("w", &log)).backoff(policy))
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    let mut delays = Vec::new();
    for generation in 1..=5 {
        running(&sup, "w", generation).await.do_send(Exit::Fail);
        let event = expect_event(&mut events, "RestartScheduled", |e| {
            matches!(e.kind, EventKind::RestartScheduled { .. })
        })
        .await;
        if let EventKind::RestartScheduled { backoff, .. } = event.kind {
            delays.push(backoff.as_millis());
        }
        let scheduled_at = tokio::time::Instant::now();
        restarted(&mut events, "w").await;
        assert!(scheduled_at.elapsed() >= Duration::from_millis(delays[delays.len() - 1] as u64));
    }
    assert_eq!(delays, [100, 200, 400, 400, 400]);

    // Up for longer than reset_after: the next restart starts from the initial delay again.
    let addr = running(&sup, "w", 6).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    addr.do_send(Exit::Fail);
    let event = expect_event(&mut events, "RestartScheduled", |e| {
        matches!(e.kind, EventKind::RestartScheduled { .. })
    })
    .await;
    match event.kind {
        EventKind::RestartScheduled { backoff, .. } => {
            assert_eq!(backoff, Duration::from_millis(100))
        }
        other => panic!("unexpected {other:?}"),
    }
    sup.shutdown().await;
}
