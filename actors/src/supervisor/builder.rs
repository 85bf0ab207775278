//! [`Supervisor`]: the builder of a supervisor, and how it starts (as root or as a child).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix::{AsyncContext, Context};
use tokio::sync::broadcast;

use super::stopping;
use super::{StartFailure, SupervisorActor, SupervisorConfig, SupervisorHandle};
use crate::backoff::BackoffPolicy;
use crate::child_spec::{ChildSpec, StartContext};
use crate::clock::{Clock, SharedClock, TokioClock};
use crate::error::SupervisionError;
use crate::event::{Events, SupervisionEvent};
use crate::panic_hook;
use crate::restart::{Intensity, Restart};
use crate::strategy::{AutoShutdown, Strategy};
use crate::token::ChildToken;

/// Builds a supervisor: name, strategy, intensity, default backoff, children in start order.
///
/// Defaults: `OneForOne`, OTP's intensity of 1 restart in 5 s, [`BackoffPolicy::default`],
/// no auto-shutdown, tokio's clock.
#[derive(Clone)]
pub struct Supervisor {
    name: Arc<str>,
    strategy: Strategy,
    intensity: Intensity,
    backoff: BackoffPolicy,
    auto_shutdown: AutoShutdown,
    clock: Option<SharedClock>,
    children: Vec<ChildSpec>,
    event_capacity: usize,
}

impl Supervisor {
    /// A supervisor named `name` (its path segment, and its id as a child).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: Arc::from(name.into()),
            strategy: Strategy::OneForOne,
            intensity: Intensity::default(),
            backoff: BackoffPolicy::default(),
            auto_shutdown: AutoShutdown::Never,
            clock: None,
            children: Vec::new(),
            event_capacity: 1024,
        }
    }

    /// The restart strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// At most `max_restarts` restarts within `period`; one more escalates.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = Intensity::new(max_restarts, period);
        self
    }

    /// The backoff policy of children that do not override it.
    pub fn backoff(mut self, policy: BackoffPolicy) -> Self {
        self.backoff = policy;
        self
    }

    /// When significant children's exits shut this supervisor down.
    pub fn auto_shutdown(mut self, auto_shutdown: AutoShutdown) -> Self {
        self.auto_shutdown = auto_shutdown;
        self
    }

    /// The clock for intensity windows and uptimes (inherited by sub-supervisors that set none).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Capacity of the event channel (root only; sub-supervisors share the root's).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Adds a child; children start in the order they are added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Adds a nested supervisor as a child (shorthand for `child(ChildSpec::supervisor(..))`).
    pub fn supervisor(self, supervisor: Supervisor) -> Self {
        self.child(ChildSpec::supervisor(supervisor))
    }

    /// The supervisor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts this supervisor as the root of a tree, starting its children in order. Must be
    /// called inside an actix `System`. On a failing child start, the children started before
    /// it are stopped (reverse order, awaited) and the error names the failing child.
    pub async fn start(self) -> Result<SupervisorHandle, SupervisionError> {
        panic_hook::install();
        let (tx, _) = broadcast::channel(self.event_capacity);
        let clock = self.clock.clone().unwrap_or_else(|| Arc::new(TokioClock));
        let (token, links) = ChildToken::new(None, true);
        let path = self.name.clone();
        match self.start_inner(token, path, tx, clock, Some(links.control)) {
            Ok(handle) => Ok(handle),
            Err(failure) => {
                let StartFailure { error, started } = *failure;
                stopping::stop_in_order(started).await;
                Err(error)
            }
        }
    }

    /// Starts this supervisor as a child of the supervisor described by `cx`.
    pub(crate) fn start_linked(
        self,
        token: ChildToken,
        cx: &StartContext<'_>,
    ) -> Result<SupervisorHandle, SupervisionError> {
        let path: Arc<str> = Arc::from(format!("{}/{}", cx.path, self.name));
        let clock = self.clock.clone().unwrap_or_else(|| cx.clock.clone());
        self.start_inner(token, path, cx.events.clone(), clock, None)
            .map_err(|failure| {
                let StartFailure { error, started } = *failure;
                // Roll back in the background: the parent's start is synchronous.
                actix::spawn(async move {
                    stopping::stop_in_order(started).await;
                });
                error
            })
    }

    fn start_inner(
        self,
        token: ChildToken,
        path: Arc<str>,
        tx: broadcast::Sender<SupervisionEvent>,
        clock: SharedClock,
        own_control: Option<crate::token::ChildControl>,
    ) -> Result<SupervisorHandle, Box<StartFailure>> {
        self.validate_all().map_err(|error| {
            Box::new(StartFailure {
                error,
                started: Vec::new(),
            })
        })?;
        let mut ctx: Context<SupervisorActor> = Context::new();
        let me = ctx.address();
        let exit = token.exit_handle();
        let handle = SupervisorHandle::new(me.clone(), path.clone(), tx.clone(), &token);
        token.attach::<SupervisorActor>(&mut ctx);
        let config = SupervisorConfig {
            path: path.clone(),
            strategy: self.strategy,
            intensity: self.intensity,
            auto_shutdown: self.auto_shutdown,
            default_backoff: self.backoff,
            clock,
            events: Events {
                tx,
                path,
                strategy: self.strategy,
            },
            exit: exit.clone(),
            own_control,
        };
        let mut actor = SupervisorActor::new(config, self.children);
        match actor.start_all(&me) {
            Ok(()) => {
                ctx.run(actor);
                Ok(handle)
            }
            Err(failure) => {
                // Never ran: its parent learns of the failure from the error, not an exit.
                exit.disarm();
                Err(failure)
            }
        }
    }

    fn validate_all(&self) -> Result<(), SupervisionError> {
        let mut seen = HashSet::new();
        for spec in &self.children {
            validate(spec)?;
            if !seen.insert(spec.id.clone()) {
                return Err(SupervisionError::DuplicateChild {
                    supervisor: self.name.clone(),
                    child: spec.id.clone(),
                });
            }
        }
        Ok(())
    }
}

/// OTP's rule: a significant child must not be permanent.
pub(crate) fn validate(spec: &ChildSpec) -> Result<(), SupervisionError> {
    if spec.significant && spec.restart == Restart::Permanent {
        return Err(SupervisionError::InvalidSpec {
            child: spec.id.clone(),
            problem: "a significant child must be transient or temporary",
        });
    }
    Ok(())
}
