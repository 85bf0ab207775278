//! The supervisor actor: owns its children's records and applies the restart semantics.
//!
//! Invariants:
//! - a child record is `Running` exactly while the supervisor holds that incarnation's control
//!   link; exit notices for any other generation or state are stale and ignored;
//! - stopping children (group restarts, shutdown, escalation) runs inside `ctx.wait`, so no other
//!   message is handled until every affected child has fully stopped, in reverse start order;
//! - a restart waits for the old incarnation to be gone (its exit was observed) and for the
//!   child's backoff; timers carry a token so a cancelled restart never fires.

pub(crate) mod builder;
pub(crate) mod handle;
pub(crate) mod messages;
pub(crate) mod stopping;

use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Running, WrapFuture};

pub(crate) use stopping::StopItem;

pub use handle::SupervisorHandle;

use crate::backoff::{BackoffPolicy, ChildBackoff};
use crate::child_spec::{ChildId, ChildSpec, StartContext};
use crate::clock::SharedClock;
use crate::error::SupervisionError;
use crate::event::{EventKind, Events};
use crate::exit::{ErrorChain, ExitReason};
use crate::restart::{Intensity, Restart, RestartWindow};
use crate::strategy::{AutoShutdown, Strategy};
use crate::token::{ChildControl, ChildToken, ExitHandle};
use crate::tree::{ChildInfo, ChildState};
use crate::watch_cell::WatchCell;
use messages::ErasedAddr;
use stopping::StoppedChild;

/// Lifecycle of the supervisor itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown,
    Done,
}

/// A running incarnation of a child.
pub(crate) struct RunningChild {
    control: ChildControl,
    exited: WatchCell<Option<ExitReason>>,
    /// `None` only for external children that have not attached yet.
    addr: Option<Box<dyn ErasedAddr>>,
    sub: Option<SupervisorHandle>,
    started_at: Instant,
}

enum RecordState {
    Running(RunningChild),
    Restarting { token: u64 },
    Stopped,
}

struct ChildRecord {
    spec: ChildSpec,
    generation: u64,
    restarts: u32,
    backoff: ChildBackoff,
    state: RecordState,
}

impl ChildRecord {
    fn new(spec: ChildSpec, default_backoff: &BackoffPolicy) -> Self {
        let policy = spec
            .backoff
            .clone()
            .unwrap_or_else(|| default_backoff.clone());
        Self {
            spec,
            generation: 0,
            restarts: 0,
            backoff: ChildBackoff::new(policy),
            state: RecordState::Stopped,
        }
    }

    fn state(&self) -> ChildState {
        match self.state {
            RecordState::Running(_) => ChildState::Running,
            RecordState::Restarting { .. } => ChildState::Restarting,
            RecordState::Stopped => ChildState::Stopped,
        }
    }

    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            name: self.spec.name.clone(),
            state: self.state(),
            generation: self.generation,
            restarts: self.restarts,
            restart: self.spec.restart,
            supervisor: self.spec.is_supervisor(),
            significant: self.spec.significant,
        }
    }

    /// Takes the running incarnation out, leaving `next` in its place; other states are kept.
    fn take_running(&mut self, next: RecordState) -> Option<RunningChild> {
        if !matches!(self.state, RecordState::Running(_)) {
            return None;
        }
        match mem::replace(&mut self.state, next) {
            RecordState::Running(running) => Some(running),
            _ => None,
        }
    }
}

/// A failed start: the error naming the child, and the children started before it (in
/// reverse start order) that must be stopped again.
pub(crate) struct StartFailure {
    pub error: SupervisionError,
    pub started: Vec<StopItem>,
}

/// Configuration a supervisor actor is built from.
pub(crate) struct SupervisorConfig {
    pub path: Arc<str>,
    pub strategy: Strategy,
    pub intensity: Intensity,
    pub auto_shutdown: AutoShutdown,
    pub default_backoff: BackoffPolicy,
    pub clock: SharedClock,
    pub events: Events,
    pub exit: ExitHandle,
    pub own_control: Option<ChildControl>,
}

/// The actor behind every supervisor and pool.
pub(crate) struct SupervisorActor {
    path: Arc<str>,
    strategy: Strategy,
    intensity: Intensity,
    auto_shutdown: AutoShutdown,
    default_backoff: BackoffPolicy,
    clock: SharedClock,
    events: Events,
    children: Vec<ChildRecord>,
    window: RestartWindow,
    exit: ExitHandle,
    phase: Phase,
    next_token: u64,
    /// The root keeps its own control link open, so dropping every handle does not stop it.
    _own_control: Option<ChildControl>,
}

impl Actor for SupervisorActor {
    type Context = Context<Self>;

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        match self.phase {
            Phase::Done => Running::Stop,
            Phase::ShuttingDown => Running::Continue,
            Phase::Running => {
                self.begin_shutdown(None, ctx);
                if self.phase == Phase::Done {
                    Running::Stop
                } else {
                    Running::Continue
                }
            }
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        let reason = self.exit.reason().unwrap_or(ExitReason::Normal);
        self.events.emit(EventKind::SupervisorStopped { reason });
    }
}

impl SupervisorActor {
    pub(crate) fn new(config: SupervisorConfig, specs: Vec<ChildSpec>) -> Self {
        let children = specs
            .into_iter()
            .map(|spec| ChildRecord::new(spec, &config.default_backoff))
            .collect();
        Self {
            path: config.path,
            strategy: config.strategy,
            intensity: config.intensity,
            auto_shutdown: config.auto_shutdown,
            default_backoff: config.default_backoff,
            clock: config.clock,
            events: config.events,
            children,
            window: RestartWindow::default(),
            exit: config.exit,
            phase: Phase::Running,
            next_token: 0,
            _own_control: config.own_control,
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.matches(key))
    }

    fn position_of(&self, id: &ChildId) -> Option<usize> {
        self.children.iter().position(|c| &c.spec.id == id)
    }

    fn fresh_token(&mut self) -> u64 {
        self.next_token += 1;
        self.next_token
    }

    /// Starts the child at `idx` synchronously as a new incarnation.
    fn start_record(
        &mut self,
        idx: usize,
        me: &Addr<Self>,
        restarted: bool,
        now: Instant,
    ) -> Result<(), ExitReason> {
        let rec = &mut self.children[idx];
        rec.generation += 1;
        let generation = rec.generation;
        let id = rec.spec.id.clone();
        let restart = rec.spec.restart;
        let (token, links) = ChildToken::new(
            Some((me.clone().recipient(), id.clone(), generation)),
            false,
        );
        let cx = StartContext {
            path: &self.path,
            events: &self.events.tx,
            clock: &self.clock,
        };
        match rec.spec.starter.start(token, &cx) {
            Ok(started) => {
                rec.state = RecordState::Running(RunningChild {
                    control: links.control,
                    exited: links.exited,
                    addr: Some(started.addr),
                    sub: started.sub,
                    started_at: now,
                });
                let kind = if restarted {
                    EventKind::ChildRestarted {
                        child: id,
                        generation,
                        restart,
                    }
                } else {
                    EventKind::ChildStarted {
                        child: id,
                        generation,
                        restart,
                    }
                };
                self.events.emit(kind);
                Ok(())
            }
            Err(chain) => {
                links.exit.disarm();
                let reason = ExitReason::StartFailed(chain);
                self.events.emit(EventKind::ChildStartFailed {
                    child: id,
                    generation,
                    restart,
                    reason: reason.clone(),
                });
                Err(reason)
            }
        }
    }

    /// Starts every child in order; on the first failure stops the started ones in reverse
    /// order and returns the error naming the child, plus the started children to stop, in
    /// reverse start order.
    pub(crate) fn start_all(&mut self, me: &Addr<Self>) -> Result<(), Box<StartFailure>> {
        let now = self.clock.now();
        for idx in 0..self.children.len() {
            if let Err(reason) = self.start_record(idx, me, false, now) {
                let child = self.children[idx].spec.id.clone();
                let mut started = Vec::new();
                for rec in self.children[..idx].iter_mut().rev() {
                    if let Some(running) = rec.take_running(RecordState::Stopped) {
                        started.push(StopItem::new(rec, running));
                    }
                }
                self.phase = Phase::Done;
                let err = SupervisionError::StartFailed {
                    supervisor: self.path.clone(),
                    child,
                    reason,
                };
                return Err(Box::new(StartFailure {
                    error: err,
                    started,
                }));
            }
        }
        Ok(())
    }

    /// An incarnation stopped by itself.
    fn on_child_exit(
        &mut self,
        child: ChildId,
        generation: u64,
        reason: ExitReason,
        ctx: &mut Context<Self>,
    ) {
        if self.phase != Phase::Running {
            return;
        }
        let Some(idx) = self.position_of(&child) else {
            return;
        };
        let rec = &mut self.children[idx];
        if rec.generation != generation || !matches!(rec.state, RecordState::Running(_)) {
            return; // a late notice from an incarnation already dealt with
        }
        let Some(running) = rec.take_running(RecordState::Stopped) else {
            return;
        };
        // One reading of the clock serves the whole exit: uptime, restart window, and the
        // successor's start when it restarts at once.
        let now = self.clock.now();
        let uptime = now.saturating_duration_since(running.started_at);
        drop(running);
        let restart = rec.spec.restart;
        let significant = rec.spec.significant;
        self.events.emit(EventKind::ChildExited {
            child: child.clone(),
            generation,
            restart,
            reason: reason.clone(),
        });
        if restart.restarts_after(&reason) {
            self.restart_after_exit(idx, reason, now, uptime, false, ctx);
            return;
        }
        if restart == Restart::Temporary {
            self.children.remove(idx);
        }
        if significant {
            self.check_auto_shutdown(child, generation, ctx);
        }
    }

    /// Counts a restart of the child at `idx` (which is not running), then stops the affected
    /// siblings and restarts the group after the child's backoff, or escalates.
    /// `deferred`: restart from a timer even without backoff (after a failed start, so a child
    /// whose start keeps failing cannot recurse).
    fn restart_after_exit(
        &mut self,
        idx: usize,
        reason: ExitReason,
        now: Instant,
        uptime: Duration,
        deferred: bool,
        ctx: &mut Context<Self>,
    ) {
        let check = self.window.record(now, self.intensity);
        let rec = &mut self.children[idx];
        let child = rec.spec.id.clone();
        let generation = rec.generation;
        if check.exceeded {
            self.events.emit(EventKind::IntensityExceeded {
                child: child.clone(),
                generation,
                reason: reason.clone(),
                restarts_in_window: check.restarts_in_window,
                max_restarts: self.intensity.max_restarts,
                period: self.intensity.period,
            });
            let err = SupervisionError::IntensityExceeded {
                supervisor: self.path.clone(),
                child,
                restarts_in_window: check.restarts_in_window,
                max_restarts: self.intensity.max_restarts,
                period: self.intensity.period,
                reason,
            };
            self.begin_shutdown(Some(ExitReason::Failed(ErrorChain::new(err))), ctx);
            return;
        }
        let delay = rec.backoff.next_delay(uptime);
        rec.restarts += 1;
        self.events.emit(EventKind::RestartScheduled {
            child,
            generation,
            restart: rec.spec.restart,
            reason,
            backoff: delay,
            restarts_in_window: check.restarts_in_window,
            max_restarts: self.intensity.max_restarts,
        });

        let token = self.fresh_token();
        let range = self.strategy.affected(idx, self.children.len());
        let mut group = Vec::with_capacity(range.len());
        let mut to_stop = Vec::new();
        for rec in &mut self.children[range] {
            group.push(rec.spec.id.clone());
            if let RecordState::Running(running) =
                mem::replace(&mut rec.state, RecordState::Restarting { token })
            {
                to_stop.push(StopItem::new(rec, running));
            }
        }
        if to_stop.is_empty() {
            self.begin_restart(group, token, delay, deferred, now, ctx);
        } else {
            to_stop.reverse();
            let fut =
                stopping::stop_in_order(to_stop)
                    .into_actor(self)
                    .map(move |stopped, act, ctx| {
                        act.record_terminated(stopped);
                        let now = act.clock.now();
                        act.begin_restart(group, token, delay, deferred, now, ctx);
                    });
            ctx.wait(fut);
        }
    }

    /// Reports children the supervisor stopped; temporary ones are forgotten.
    fn record_terminated(&mut self, stopped: Vec<StoppedChild>) {
        for s in stopped {
            self.events.emit(EventKind::ChildTerminated {
                child: s.id.clone(),
                generation: s.generation,
                restart: s.restart,
                reason: s.reason,
            });
            if s.restart == Restart::Temporary
                && let Some(idx) = self.position_of(&s.id)
                && !matches!(self.children[idx].state, RecordState::Running(_))
            {
                self.children.remove(idx);
            }
        }
    }

    fn begin_restart(
        &mut self,
        group: Vec<ChildId>,
        token: u64,
        delay: Duration,
        deferred: bool,
        now: Instant,
        ctx: &mut Context<Self>,
    ) {
        if delay.is_zero() && !deferred {
            self.restart_now(group, token, now, ctx);
        } else {
            ctx.run_later(delay, move |act, ctx| {
                let now = act.clock.now();
                act.restart_now(group, token, now, ctx);
            });
        }
    }

    /// Starts, in order, the children of `group` still waiting for restart round `token`.
    fn restart_now(
        &mut self,
        group: Vec<ChildId>,
        token: u64,
        now: Instant,
        ctx: &mut Context<Self>,
    ) {
        if self.phase != Phase::Running {
            return;
        }
        let me = ctx.address();
        for id in group {
            let Some(idx) = self.position_of(&id) else {
                continue;
            };
            if !matches!(self.children[idx].state, RecordState::Restarting { token: t } if t == token)
            {
                continue;
            }
            if let Err(reason) = self.start_record(idx, &me, true, now) {
                // A failed restart counts like a crash of that child (OTP retries it, and the
                // retries count against intensity).
                self.children[idx].state = RecordState::Stopped;
                self.restart_after_exit(idx, reason, now, Duration::ZERO, true, ctx);
                return;
            }
        }
    }

    fn check_auto_shutdown(&mut self, child: ChildId, generation: u64, ctx: &mut Context<Self>) {
        let trigger = match self.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !self
                .children
                .iter()
                .any(|c| c.spec.significant && !matches!(c.state, RecordState::Stopped)),
        };
        if trigger {
            self.events
                .emit(EventKind::AutoShutdownTriggered { child, generation });
            self.begin_shutdown(Some(ExitReason::Shutdown), ctx);
        }
    }

    /// Stops every child in reverse start order, then the supervisor itself with `reason`
    /// (or the reason its stop request recorded).
    fn begin_shutdown(&mut self, reason: Option<ExitReason>, ctx: &mut Context<Self>) {
        if self.phase != Phase::Running {
            return;
        }
        self.phase = Phase::ShuttingDown;
        if let Some(reason) = reason {
            self.exit.set(reason);
        }
        let mut to_stop = Vec::new();
        for rec in self.children.iter_mut().rev() {
            if let RecordState::Running(running) =
                mem::replace(&mut rec.state, RecordState::Stopped)
            {
                to_stop.push(StopItem::new(rec, running));
            }
        }
        if to_stop.is_empty() {
            self.phase = Phase::Done;
            actix::ActorContext::stop(ctx);
            return;
        }
        let fut = stopping::stop_in_order(to_stop)
            .into_actor(self)
            .map(|stopped, act, ctx| {
                act.record_terminated(stopped);
                act.phase = Phase::Done;
                actix::ActorContext::stop(ctx);
            });
        ctx.wait(fut);
    }
}
