//! Significant children and auto-shutdown.

use std::time::Duration;

use crate::common::*;
use replikativ_actors::{
    AutoShutdown, BackoffPolicy, ChildSpec, EventKind, ExitReason, Restart, Strategy,
    SupervisionError, Supervisor,
};

#[actix_rt::test]
async fn significant_child_exit_shuts_the_supervisor_down() {
    let log = new_log();
    let sup = Supervisor::new("catch-up")
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(ChildSpec::actor("helper", {
            let log = log.clone();
            move || Worker::new("helper", &log)
        }))
        .child(
            ChildSpec::actor("job", move || Worker::new("job", &log))
                .restart(Restart::Transient)
                .significant(true),
        )
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    running(&sup, "job", 1).await.do_send(Exit::Normal);
    expect_event(&mut events, "AutoShutdownTriggered", |e| {
        matches!(e.kind, EventKind::AutoShutdownTriggered { .. })
    })
    .await;
    let reason = tokio::time::timeout(DEADLINE, sup.join())
        .await
        .expect("shuts down");
    assert!(matches!(reason, ExitReason::Shutdown));
}

#[actix_rt::test]
async fn significant_bystander_stopped_by_a_group_restart_does_not_trigger_auto_shutdown() {
    let log = new_log();
    let sup = Supervisor::new("root")
        .strategy(Strategy::OneForAll)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .intensity(5, Duration::from_secs(1))
        .backoff(BackoffPolicy::none())
        .child(ChildSpec::actor("w", {
            let log = log.clone();
            move || Worker::new("w", &log)
        }))
        .child(
            ChildSpec::actor("job", move || Worker::new("job", &log))
                .restart(Restart::Temporary)
                .significant(true),
        )
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    running(&sup, "w", 1).await.do_send(Exit::Fail);
    restarted(&mut events, "w").await;
    assert!(sup.is_running());
    let children = sup.which_children().await.expect("answers");
    assert_eq!(children.len(), 1, "the temporary bystander is forgotten");
    sup.shutdown().await;
}

#[actix_rt::test]
async fn significant_permanent_child_is_refused() {
    let result = Supervisor::new("root")
        .child(ChildSpec::actor("job", || Worker::new("job", &new_log())).significant(true))
        .start()
        .await;
    assert!(matches!(result, Err(SupervisionError::InvalidSpec { .. })));
}
