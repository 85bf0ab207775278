//! Shared test actors and deadline-bounded waits.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use replikativ_actors::{
    ChildInfo, ChildState, EventKind, ExitReason, SupervisionEvent, SupervisorHandle, exit, fail,
};
use tokio::sync::broadcast;

/// Deadline for anything a test waits on.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// An error with a cause, to check that chains survive.
#[derive(Debug, thiserror::Error)]
#[error("worker {worker} broke")]
pub struct WorkerBroke {
    pub worker: String,
    #[source]
    pub cause: std::io::Error,
}

/// A worker that can be told to exit in every way a child can.
pub struct Worker {
    pub name: String,
    pub log: Log,
    pub ignore_shutdown: bool,
}

/// Names of workers in the order they stopped.
pub type Log = Arc<Mutex<Vec<String>>>;

impl Worker {
    pub fn new(name: &str, log: &Log) -> Self {
        Self {
            name: name.to_owned(),
            log: log.clone(),
            ignore_shutdown: false,
        }
    }
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        if self.ignore_shutdown {
            Running::Continue
        } else {
            Running::Stop
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.log.lock().expect("log").push(self.name.clone());
    }
}

/// Answers the worker's name.
#[derive(Message)]
#[rtype(result = "String")]
pub struct Ping;

impl Handler<Ping> for Worker {
    type Result = String;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> String {
        self.name.clone()
    }
}

/// How to exit.
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "()")]
pub enum Exit {
    Normal,
    Shutdown,
    Fail,
    Panic,
}

impl Handler<Exit> for Worker {
    type Result = ();
    fn handle(&mut self, how: Exit, ctx: &mut Context<Self>) {
        match how {
            Exit::Normal => ctx.stop(),
            Exit::Shutdown => exit(ctx, ExitReason::Shutdown),
            Exit::Fail => fail(
                ctx,
                WorkerBroke {
                    worker: self.name.clone(),
                    cause: std::io::Error::other("disk full"),
                },
            ),
            Exit::Panic => panic!("boom in {}", self.name),
        }
    }
}

pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

/// Counts factory calls; fails every call after the first `ok` ones.
#[derive(Clone, Default)]
pub struct Flaky {
    pub calls: Arc<AtomicUsize>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot open {0}")]
pub struct OpenFailed(pub &'static str);

impl Flaky {
    pub fn call(&self, ok: usize) -> Result<(), OpenFailed> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < ok {
            Ok(())
        } else {
            Err(OpenFailed("db"))
        }
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The next event matching `pred`, within the deadline.
pub async fn expect_event(
    rx: &mut broadcast::Receiver<SupervisionEvent>,
    what: &str,
    pred: impl Fn(&SupervisionEvent) -> bool,
) -> SupervisionEvent {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(event) if pred(&event) => return event,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    panic!("event stream closed waiting for {what}")
                }
            }
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("no {what} event within {DEADLINE:?}"))
}

/// Waits for `ChildRestarted` of `child`.
pub async fn restarted(rx: &mut broadcast::Receiver<SupervisionEvent>, child: &str) -> u64 {
    let event = expect_event(
        rx,
        "ChildRestarted",
        |e| matches!(&e.kind, EventKind::ChildRestarted { child: c, .. } if c == child),
    )
    .await;
    match event.kind {
        EventKind::ChildRestarted { generation, .. } => generation,
        _ => unreachable!("matched above"),
    }
}

/// Waits for `ChildExited` of `child`; answers its reason.
pub async fn exited(rx: &mut broadcast::Receiver<SupervisionEvent>, child: &str) -> ExitReason {
    let event = expect_event(
        rx,
        "ChildExited",
        |e| matches!(&e.kind, EventKind::ChildExited { child: c, .. } if c == child),
    )
    .await;
    event
        .reason()
        .cloned()
        .expect("ChildExited carries a reason")
}

/// Polls `check` until it yields `Some`, within the deadline.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let wait = async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(DEADLINE, wait)
        .await
        .unwrap_or_else(|_| panic!("{what} not reached within {DEADLINE:?}"))
}

/// The child `id` as `which_children` reports it, if listed.
pub async fn child(sup: &SupervisorHandle, id: &str) -> Option<ChildInfo> {
    sup.which_children()
        .await
        .expect("supervisor answers")
        .into_iter()
        .find(|c| c.id == id)
}

/// Waits until `id` runs with generation `generation`; answers its address.
pub async fn running(sup: &SupervisorHandle, id: &str, generation: u64) -> Addr<Worker> {
    eventually(
        &format!("{id} running as generation {generation}"),
        || async {
            let info = child(sup, id).await?;
            if info.state == ChildState::Running && info.generation == generation {
                sup.lookup::<Worker>(id).await.ok()
            } else {
                None
            }
        },
    )
    .await
}
