//! OTP restart types: what happens when a permanent, transient or temporary child exits
//! normally, with `shutdown`, and abnormally.

use std::time::Duration;

use crate::common::*;
use replikativ_actors::{BackoffPolicy, ChildSpec, ChildState, ExitReason, Restart, Supervisor};

/// Starts a supervisor over one child `w` of `restart`, makes it exit `how`, and answers how
/// the supervisor lists it afterwards (`None`: its spec was dropped).
async fn after_exit(restart: Restart, how: Exit) -> (ExitReason, Option<(ChildState, u64)>) {
    let log = new_log();
    let child_log = log.clone();
    let sup = Supervisor::new("root")
        .intensity(10, Duration::from_secs(1))
        .backoff(BackoffPolicy::none())
        .child(ChildSpec::actor("w", move || Worker::new("w", &child_log)).restart(restart))
        .start()
        .await
        .expect("start");
    let mut events = sup.subscribe();
    let addr = sup.lookup::<Worker>("w").await.expect("running");
    addr.do_send(how);
    let reason = exited(&mut events, "w").await;
    // The exit notice and the restart decision are handled together, so the next answer
    // already reflects the decision.
    let listed = child(&sup, "w").await.map(|c| (c.state, c.generation));
    sup.shutdown().await;
    (reason, listed)
}

#[actix_rt::test]
async fn permanent_child_is_restarted_after_every_kind_of_exit() {
    for how in [Exit::Normal, Exit::Shutdown, Exit::Fail, Exit::Panic] {
        let (_, listed) = after_exit(Restart::Permanent, how).await;
        assert_eq!(listed, Some((ChildState::Running, 2)), "after {how:?}");
    }
}

#[actix_rt::test]
async fn transient_child_is_restarted_only_after_an_abnormal_exit() {
    let (reason, listed) = after_exit(Restart::Transient, Exit::Normal).await;
    assert!(matches!(reason, ExitReason::Normal));
    assert_eq!(listed, Some((ChildState::Stopped, 1)));

    let (reason, listed) = after_exit(Restart::Transient, Exit::Shutdown).await;
    assert!(matches!(reason, ExitReason::Shutdown));
    assert_eq!(listed, Some((ChildState::Stopped, 1)));

    for how in [Exit::Fail, Exit::Panic] {
        let (_, listed) = after_exit(Restart::Transient, how).await;
        assert_eq!(listed, Some((ChildState::Running, 2)), "after {how:?}");
    }
}

#[actix_rt::test]
async fn temporary_child_is_never_restarted_and_its_spec_is_dropped() {
    for how in [Exit::Normal, Exit::Shutdown, Exit::Fail, Exit::Panic] {
        let (_, listed) = after_exit(Restart::Temporary, how).await;
        assert_eq!(listed, None, "after {how:?}");
    }
}

#[actix_rt::test]
async fn failing_child_reports_its_error_with_the_whole_source_chain() {
    let (reason, _) = after_exit(Restart::Permanent, Exit::Fail).await;
    assert_eq!(
        reason.chain(),
        vec!["failed", "worker w broke", "disk full"]
    );
}

#[actix_rt::test]
async fn restarted_child_has_a_new_address_and_lookup_finds_it() {
    let log = new_log();
    let sup = Supervisor::new("root")
        .backoff(BackoffPolicy::none())
        .child(ChildSpec::actor("w", move || Worker::new("w", &log)))
        .start()
        .await
        .expect("start");
    let first = running(&sup, "w", 1).await;
    first.do_send(Exit::Fail);
    let second = running(&sup, "w", 2).await;
    assert_ne!(first, second);
    assert!(
        first.send(Ping).await.is_err(),
        "the old incarnation is gone"
    );
    assert_eq!(second.send(Ping).await.expect("answers"), "w");
    sup.shutdown().await;
}
