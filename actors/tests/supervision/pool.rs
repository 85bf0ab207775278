//! The dynamic pool: children added at run time, and external children with tokens.

use crate::common::*;
use actix::prelude::*;
use replikativ_actors::{ChildState, ChildToken, ExitReason, Pool, Restart};

fn worker_pool() -> Pool<Worker, String> {
    Pool::new("conns", |name: String| {
        Ok::<_, std::convert::Infallible>(Worker::new(&name, &new_log()))
    })
}

#[actix_rt::test]
async fn pool_starts_children_at_run_time_and_forgets_temporary_ones_when_they_exit() {
    let pool = worker_pool().start().await.expect("start");
    let mut events = pool.supervisor().subscribe();
    let one = pool
        .start_child("conn-1", "one".into())
        .await
        .expect("started");
    let two = pool
        .start_child("conn-2", "two".into())
        .await
        .expect("started");
    assert_eq!(one.send(Ping).await.expect("answers"), "one");
    assert_eq!(pool.count_children().await.expect("answers").active, 2);
    two.do_send(Exit::Fail);
    exited(&mut events, "conn-2").await;
    let ids: Vec<_> = pool
        .which_children()
        .await
        .expect("answers")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["conn-1"]);
    assert!(
        pool.start_child("conn-1", "again".into()).await.is_err(),
        "ids are unique"
    );
    pool.terminate_child("conn-1").await.expect("terminated");
    assert!(pool.which_children().await.expect("answers").is_empty());
    pool.supervisor().shutdown().await;
}

#[actix_rt::test]
async fn pool_restarts_permanent_children_with_their_arguments() {
    let pool = worker_pool()
        .children(|c| {
            c.restart(Restart::Permanent)
                .backoff(replikativ_actors::BackoffPolicy::none())
        })
        .start()
        .await
        .expect("start");
    let mut events = pool.supervisor().subscribe();
    pool.start_child("conn-1", "one".into())
        .await
        .expect("started")
        .do_send(Exit::Panic);
    restarted(&mut events, "conn-1").await;
    let next = pool.lookup("conn-1").await.expect("running");
    assert_eq!(next.send(Ping).await.expect("answers"), "one");
    pool.supervisor().shutdown().await;
}

/// Stands in for a websocket actor started by actix-web: the pool does not create it.
struct External {
    token: Option<ChildToken>,
}

impl Actor for External {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(token) = self.token.take() {
            token.attach::<Self>(ctx);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Explode;

impl Handler<Explode> for External {
    type Result = ();
    fn handle(&mut self, _: Explode, _: &mut Context<Self>) {
        panic!("frame decoder bug");
    }
}

#[actix_rt::test]
async fn external_child_reports_its_exit_through_its_token_and_can_be_terminated() {
    let pool = worker_pool().start().await.expect("start");
    let mut events = pool.supervisor().subscribe();

    let token = pool.register_external("ws-1").await.expect("registered");
    let ws = External { token: Some(token) }.start();
    let found = eventually("external addr attached", || async {
        pool.supervisor().lookup::<External>("ws-1").await.ok()
    })
    .await;
    assert_eq!(found, ws);
    ws.do_send(Explode);
    match exited(&mut events, "ws-1").await {
        ExitReason::Panicked { message, .. } => assert_eq!(message, "frame decoder bug"),
        other => panic!("unexpected {other}"),
    }

    let token = pool.register_external("ws-2").await.expect("registered");
    let ws = External { token: Some(token) }.start();
    let info = crate::common::child(pool.supervisor(), "ws-2")
        .await
        .expect("listed");
    assert_eq!(info.state, ChildState::Running);
    pool.terminate_child("ws-2").await.expect("terminated");
    assert!(!ws.connected(), "the external actor stopped");
    pool.supervisor().shutdown().await;
}

/// A pool nested under a rest-for-one parent is a new supervisor after the parent restarts
/// it; its slot always holds the running incarnation, without a walk down the tree.
#[actix_rt::test]
async fn a_nested_pool_is_reached_through_its_slot_across_restarts() {
    use replikativ_actors::{ChildSpec, Slot, Strategy, Supervisor, SupervisorSlot};
    use std::time::Duration;

    let pool = worker_pool();
    let slot = SupervisorSlot::new();
    let first_sibling: Slot<Worker> = Slot::new();
    let root = Supervisor::new("root")
        .strategy(Strategy::RestForOne)
        .backoff(replikativ_actors::BackoffPolicy::none())
        .child(ChildSpec::actor_in("store", first_sibling.clone(), || {
            Worker::new("store", &new_log())
        }))
        .child(pool.child_spec_in(slot.clone()))
        .start()
        .await
        .expect("start");
    let before = slot.get().expect("the pool runs");
    let conns = pool.handle(before.clone());
    conns
        .start_child("conn-1", "one".into())
        .await
        .expect("started");
    // The store fails: rest-for-one restarts it and the pool after it.
    let store = first_sibling.get().expect("store runs");
    store.do_send(Exit::Fail);
    let after = slot
        .wait_next(&before, Duration::from_secs(10))
        .await
        .expect("a new pool incarnation runs");
    assert!(!before.is_running(), "the old pool stopped");
    let conns = pool.handle(after);
    assert!(
        conns.which_children().await.expect("answers").is_empty(),
        "the new pool starts empty (its children were temporary)"
    );
    let two = conns
        .start_child("conn-2", "two".into())
        .await
        .expect("the new pool takes children");
    assert_eq!(two.send(Ping).await.expect("answers"), "two");
    root.shutdown().await;
    assert!(slot.get().is_none(), "nothing runs after shutdown");
}
