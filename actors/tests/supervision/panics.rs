//! Panics in handlers and factories become exits; nothing else is harmed.

use std::time::Duration;

use crate::common::*;
use replikativ_actors::{BackoffPolicy, ChildSpec, ExitReason, SupervisionError, Supervisor};

#[actix_rt::test]
async fn panicking_handler_is_restarted_and_its_panic_message_is_in_the_report() {
    let log = new_log();
    let sup = Supervisor::new("root")
        .backoff(BackoffPolicy::none())
        .intensity(5, Duration::from_secs(1))
        .child(ChildSpec::actor("sibling", {
            let log = log.clone();
            move || Worker::new("sibling", &log)
        }))
        .child(ChildSpec::actor("w", move || Worker::new("w", &log)))
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    running(&sup, "w", 1).await.do_send(Exit::Panic);
    match exited(&mut events, "w").await {
        ExitReason::Panicked { message, location } => {
            assert_eq!(message, "boom in w");
            let location = location.expect("location recorded");
            assert!(location.contains("common/mod.rs"), "{location}");
        }
        other => panic!("expected a panic, got {other}"),
    }
    let next = running(&sup, "w", 2).await;
    assert_eq!(next.send(Ping).await.expect("successor answers"), "w");
    let sibling = running(&sup, "sibling", 1).await;
    assert_eq!(
        sibling.send(Ping).await.expect("sibling unharmed"),
        "sibling"
    );
    sup.shutdown().await;
}

#[actix_rt::test]
async fn panicking_factory_is_a_start_failure_not_a_crash_of_the_supervisor() {
    let result = Supervisor::new("root")
        .child(ChildSpec::actor("w", || -> Worker { panic!("no config") }))
        .start()
        .await;
    match result {
        Err(SupervisionError::StartFailed { child, reason, .. }) => {
            assert_eq!(child, "w");
            let chain = reason.chain().join(" | ");
            assert!(chain.contains("factory panicked"), "{chain}");
            assert!(chain.contains("no config"), "{chain}");
        }
        Err(other) => panic!("unexpected {other}"),
        Ok(_) => panic!("start must fail"),
    }
}
