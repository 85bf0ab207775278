//! Messages the supervisor actor handles: exit notices from children and the requests behind
//! [`super::SupervisorHandle`].

use std::any::Any;
use std::sync::Arc;

use actix::{
    ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, ResponseFuture,
    WrapFuture,
};
use tokio::sync::oneshot;

use super::stopping::{self, StopItem};
use super::{ChildRecord, Phase, RecordState, RunningChild, SupervisorActor, SupervisorHandle};
use crate::child_spec::{ChildId, ChildSpec, StartContext, StartedChild, Starter};
use crate::error::SupervisionError;
use crate::event::EventKind;
use crate::exit::ErrorChain;
use crate::restart::Restart;
use crate::strategy::Shutdown;
use crate::token::ChildToken;
use crate::tree::{ChildInfo, ChildState};

/// A stored child address of any type: `Addr<A>` or `SupervisorHandle`.
pub(crate) trait ErasedAddr: Send {
    fn clone_any(&self) -> Box<dyn Any + Send>;
}

/// An incarnation stopped (sent by its exit guard).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChildExited {
    pub child: ChildId,
    pub generation: u64,
    pub reason: crate::exit::ExitReason,
}

impl Handler<ChildExited> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        self.on_child_exit(msg.child, msg.generation, msg.reason, ctx);
    }
}

/// An external child attached its token: here is its address.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ChildAttached {
    pub child: ChildId,
    pub generation: u64,
    pub addr: Box<dyn ErasedAddr>,
}

impl Handler<ChildAttached> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, msg: ChildAttached, _ctx: &mut Context<Self>) {
        if let Some(idx) = self.position_of(&msg.child) {
            let rec = &mut self.children[idx];
            if let RecordState::Running(running) = &mut rec.state
                && rec.generation == msg.generation
            {
                running.addr = Some(msg.addr);
            }
        }
    }
}

/// `which_children`, with the handles of running sub-supervisors (for the tree).
#[derive(Message)]
#[rtype(result = "Vec<(ChildInfo, Option<SupervisorHandle>)>")]
pub(crate) struct Describe;

impl Handler<Describe> for SupervisorActor {
    type Result = Vec<(ChildInfo, Option<SupervisorHandle>)>;

    fn handle(&mut self, _: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        self.children
            .iter()
            .map(|rec| {
                let sub = match &rec.state {
                    RecordState::Running(running) => running.sub.clone(),
                    _ => None,
                };
                (rec.info(), sub)
            })
            .collect()
    }
}

/// The current address of a child, type-erased.
#[derive(Message)]
#[rtype(result = "Result<Box<dyn Any + Send>, SupervisionError>")]
pub(crate) struct Lookup {
    pub key: String,
}

impl Handler<Lookup> for SupervisorActor {
    type Result = Result<Box<dyn Any + Send>, SupervisionError>;

    fn handle(&mut self, msg: Lookup, _ctx: &mut Context<Self>) -> Self::Result {
        let idx = self.find(&msg.key)?;
        let rec = &self.children[idx];
        match &rec.state {
            RecordState::Running(RunningChild {
                addr: Some(addr), ..
            }) => Ok(addr.clone_any()),
            _ => Err(SupervisionError::NotRunning {
                supervisor: self.path.clone(),
                child: rec.spec.id.clone(),
                state: rec.state(),
            }),
        }
    }
}

/// Adds and starts a child at run time; answers its address.
#[derive(Message)]
#[rtype(result = "Result<Box<dyn Any + Send>, SupervisionError>")]
pub(crate) struct StartChild {
    pub spec: ChildSpec,
}

impl Handler<StartChild> for SupervisorActor {
    type Result = Result<Box<dyn Any + Send>, SupervisionError>;

    fn handle(&mut self, msg: StartChild, ctx: &mut Context<Self>) -> Self::Result {
        self.admit(&msg.spec)?;
        let id = msg.spec.id.clone();
        self.children
            .push(ChildRecord::new(msg.spec, &self.default_backoff));
        let idx = self.children.len() - 1;
        if let Err(reason) = self.start_record(idx, &ctx.address(), false, self.clock.now()) {
            self.children.remove(idx);
            return Err(SupervisionError::StartFailed {
                supervisor: self.path.clone(),
                child: id,
                reason,
            });
        }
        match &self.children[idx].state {
            RecordState::Running(RunningChild {
                addr: Some(addr), ..
            }) => Ok(addr.clone_any()),
            other => Err(SupervisionError::NotRunning {
                supervisor: self.path.clone(),
                child: id,
                state: state_of(other),
            }),
        }
    }
}

/// The starter of external children: they are started by their owner, never restarted.
struct ExternalStarter;

#[derive(Debug, thiserror::Error)]
#[error("an external child is started by its owner and cannot be restarted")]
struct ExternalRestart;

impl Starter for ExternalStarter {
    fn start(
        &self,
        _token: ChildToken,
        _cx: &StartContext<'_>,
    ) -> Result<StartedChild, ErrorChain> {
        Err(ErrorChain::new(ExternalRestart))
    }
}

/// Registers a child whose actor is started elsewhere; answers the token it must attach.
#[derive(Message)]
#[rtype(result = "Result<ChildToken, SupervisionError>")]
pub(crate) struct RegisterExternal {
    pub id: ChildId,
    pub shutdown: Shutdown,
}

impl Handler<RegisterExternal> for SupervisorActor {
    type Result = Result<ChildToken, SupervisionError>;

    fn handle(&mut self, msg: RegisterExternal, ctx: &mut Context<Self>) -> Self::Result {
        let spec = ChildSpec::from_starter(
            msg.id.clone(),
            Arc::new(ExternalStarter),
            msg.shutdown,
            "external",
        )
        .restart(Restart::Temporary);
        self.admit(&spec)?;
        let me = ctx.address();
        let mut rec = ChildRecord::new(spec, &self.default_backoff);
        rec.generation = 1;
        let (mut token, links) =
            ChildToken::new(Some((me.clone().recipient(), msg.id.clone(), 1)), true);
        token.report_addr_to(me.recipient(), msg.id.clone(), 1);
        rec.state = RecordState::Running(RunningChild {
            control: links.control,
            exited: links.exited,
            addr: None,
            sub: None,
            started_at: self.clock.now(),
        });
        self.children.push(rec);
        self.events.emit(EventKind::ChildStarted {
            child: msg.id,
            generation: 1,
            restart: Restart::Temporary,
        });
        Ok(token)
    }
}

/// Stops a child by its shutdown policy without restarting it.
#[derive(Message)]
#[rtype(result = "Result<(), SupervisionError>")]
pub(crate) struct TerminateChild {
    pub key: String,
}

impl Handler<TerminateChild> for SupervisorActor {
    type Result = ResponseFuture<Result<(), SupervisionError>>;

    fn handle(&mut self, msg: TerminateChild, ctx: &mut Context<Self>) -> Self::Result {
        let idx = match self.find(&msg.key) {
            Ok(idx) => idx,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        let rec = &mut self.children[idx];
        let Some(running) = rec.take_running(RecordState::Stopped) else {
            // Restarting or stopped: cancel any pending restart.
            rec.state = RecordState::Stopped;
            if rec.spec.restart == Restart::Temporary {
                self.children.remove(idx);
            }
            return Box::pin(async { Ok(()) });
        };
        let item = StopItem::new(rec, running);
        let (tx, rx) = oneshot::channel();
        let fut =
            stopping::stop_in_order(vec![item])
                .into_actor(self)
                .map(move |stopped, act, _ctx| {
                    act.record_terminated(stopped);
                    let _ = tx.send(());
                });
        ctx.wait(fut);
        let supervisor = self.path.clone();
        Box::pin(async move {
            rx.await
                .map_err(|_| SupervisionError::SupervisorGone { supervisor })
        })
    }
}

/// Starts a stopped child again.
#[derive(Message)]
#[rtype(result = "Result<(), SupervisionError>")]
pub(crate) struct RestartChild {
    pub key: String,
}

impl Handler<RestartChild> for SupervisorActor {
    type Result = Result<(), SupervisionError>;

    fn handle(&mut self, msg: RestartChild, ctx: &mut Context<Self>) -> Self::Result {
        let idx = self.find(&msg.key)?;
        self.require_stopped(idx)?;
        self.start_record(idx, &ctx.address(), true, self.clock.now())
            .map_err(|reason| SupervisionError::StartFailed {
                supervisor: self.path.clone(),
                child: self.children[idx].spec.id.clone(),
                reason,
            })
    }
}

/// Forgets a stopped child's spec.
#[derive(Message)]
#[rtype(result = "Result<(), SupervisionError>")]
pub(crate) struct DeleteChild {
    pub key: String,
}

impl Handler<DeleteChild> for SupervisorActor {
    type Result = Result<(), SupervisionError>;

    fn handle(&mut self, msg: DeleteChild, _ctx: &mut Context<Self>) -> Self::Result {
        let idx = self.find(&msg.key)?;
        self.require_stopped(idx)?;
        self.children.remove(idx);
        Ok(())
    }
}

/// Asks the supervisor to shut down (reverse order) as if its parent had.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct StopSupervisor;

impl Handler<StopSupervisor> for SupervisorActor {
    type Result = ();

    fn handle(&mut self, _: StopSupervisor, ctx: &mut Context<Self>) {
        self.exit.set_if_unset(crate::exit::ExitReason::Shutdown);
        ctx.stop();
    }
}

/// The supervisor's strategy (for the tree).
#[derive(Message)]
#[rtype(result = "crate::strategy::Strategy")]
pub(crate) struct GetStrategy;

impl Handler<GetStrategy> for SupervisorActor {
    type Result = actix::MessageResult<GetStrategy>;

    fn handle(&mut self, _: GetStrategy, _ctx: &mut Context<Self>) -> Self::Result {
        actix::MessageResult(self.strategy)
    }
}

fn state_of(state: &RecordState) -> ChildState {
    match state {
        RecordState::Running(_) => ChildState::Running,
        RecordState::Restarting { .. } => ChildState::Restarting,
        RecordState::Stopped => ChildState::Stopped,
    }
}

impl SupervisorActor {
    fn find(&self, key: &str) -> Result<usize, SupervisionError> {
        if self.phase != Phase::Running {
            return Err(SupervisionError::SupervisorGone {
                supervisor: self.path.clone(),
            });
        }
        self.position(key)
            .ok_or_else(|| SupervisionError::NoSuchChild {
                supervisor: self.path.clone(),
                child: key.to_owned(),
            })
    }

    fn require_stopped(&self, idx: usize) -> Result<(), SupervisionError> {
        let rec = &self.children[idx];
        match rec.state() {
            ChildState::Stopped => Ok(()),
            state => Err(SupervisionError::WrongState {
                supervisor: self.path.clone(),
                child: rec.spec.id.clone(),
                state,
            }),
        }
    }

    /// Checks a spec added at run time.
    fn admit(&self, spec: &ChildSpec) -> Result<(), SupervisionError> {
        if self.phase != Phase::Running {
            return Err(SupervisionError::SupervisorGone {
                supervisor: self.path.clone(),
            });
        }
        super::builder::validate(spec)?;
        if self.position_of(&spec.id).is_some() {
            return Err(SupervisionError::DuplicateChild {
                supervisor: self.path.clone(),
                child: spec.id.clone(),
            });
        }
        Ok(())
    }
}
