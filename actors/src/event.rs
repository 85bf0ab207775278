//! Supervision reports: one past-tense [`SupervisionEvent`] per start, exit, restart, give-up
//! and escalation, broadcast to subscribers and emitted as a structured `tracing` event.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::child_spec::ChildId;
use crate::exit::ExitReason;
use crate::restart::Restart;
use crate::strategy::Strategy;

/// Something that happened in a supervisor, with the context needed to understand it.
#[derive(Debug, Clone)]
pub struct SupervisionEvent {
    /// Path of the supervisor it happened in, e.g. `node/peers`.
    pub supervisor: Arc<str>,
    /// That supervisor's strategy.
    pub strategy: Strategy,
    /// What happened.
    pub kind: EventKind,
}

/// The events, past tense. `generation` counts the incarnations of a child (first start = 1).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum EventKind {
    /// A child started for the first time (at supervisor start or `start_child`).
    ChildStarted {
        /// The child.
        child: ChildId,
        /// Its incarnation.
        generation: u64,
        /// Its restart type.
        restart: Restart,
    },
    /// A new incarnation replaced an exited one.
    ChildRestarted {
        /// The child.
        child: ChildId,
        /// The new incarnation.
        generation: u64,
        /// Its restart type.
        restart: Restart,
    },
    /// A child's factory failed (or panicked).
    ChildStartFailed {
        /// The child.
        child: ChildId,
        /// The incarnation that failed to start.
        generation: u64,
        /// Its restart type.
        restart: Restart,
        /// `StartFailed` with the factory's error chain.
        reason: ExitReason,
    },
    /// A child stopped by itself (normally, failing, panicking).
    ChildExited {
        /// The child.
        child: ChildId,
        /// The incarnation that exited.
        generation: u64,
        /// Its restart type.
        restart: Restart,
        /// Why.
        reason: ExitReason,
    },
    /// The supervisor stopped a child (shutdown, group restart, `terminate_child`, escalation).
    ChildTerminated {
        /// The child.
        child: ChildId,
        /// The incarnation stopped.
        generation: u64,
        /// Its restart type.
        restart: Restart,
        /// How it ended (`Shutdown`, or `Killed` after a timeout or `BrutalKill`).
        reason: ExitReason,
    },
    /// A restart was decided and will happen after `backoff`.
    RestartScheduled {
        /// The child.
        child: ChildId,
        /// The incarnation that exited.
        generation: u64,
        /// Its restart type.
        restart: Restart,
        /// Why it exited.
        reason: ExitReason,
        /// Delay chosen before the restart.
        backoff: Duration,
        /// Restarts within the intensity window, this one included.
        restarts_in_window: usize,
        /// The intensity limit.
        max_restarts: u32,
    },
    /// Too many restarts: the supervisor gives up and escalates to its parent.
    IntensityExceeded {
        /// The child whose exit tipped it over.
        child: ChildId,
        /// Its incarnation.
        generation: u64,
        /// Its exit reason.
        reason: ExitReason,
        /// Restarts within the window.
        restarts_in_window: usize,
        /// The limit.
        max_restarts: u32,
        /// The window.
        period: Duration,
    },
    /// A significant child's exit shuts the supervisor down.
    AutoShutdownTriggered {
        /// The significant child.
        child: ChildId,
        /// Its incarnation.
        generation: u64,
    },
    /// The supervisor itself stopped.
    SupervisorStopped {
        /// Why.
        reason: ExitReason,
    },
}

impl SupervisionEvent {
    /// The child the event is about, if any.
    pub fn child(&self) -> Option<&ChildId> {
        self.kind.subject().0
    }

    /// The exit reason the event carries, if any.
    pub fn reason(&self) -> Option<&ExitReason> {
        self.kind.subject().1
    }

    /// What happened, in a few words (as logged), e.g. `restart scheduled`.
    pub fn summary(&self) -> &'static str {
        headline(&self.kind).1
    }

    /// The incarnation the event concerns, if it names one.
    pub fn generation(&self) -> Option<u64> {
        details(&self.kind).generation
    }
}

impl EventKind {
    /// The child an event is about and the exit reason it carries, each if any.
    fn subject(&self) -> (Option<&ChildId>, Option<&ExitReason>) {
        match self {
            EventKind::ChildStarted { child, .. }
            | EventKind::ChildRestarted { child, .. }
            | EventKind::AutoShutdownTriggered { child, .. } => (Some(child), None),
            EventKind::ChildStartFailed { child, reason, .. }
            | EventKind::ChildExited { child, reason, .. }
            | EventKind::ChildTerminated { child, reason, .. }
            | EventKind::RestartScheduled { child, reason, .. }
            | EventKind::IntensityExceeded { child, reason, .. } => (Some(child), Some(reason)),
            EventKind::SupervisorStopped { reason } => (None, Some(reason)),
        }
    }
}

/// Emits events of one supervisor to the tree's shared channel and to `tracing`.
#[derive(Clone)]
pub(crate) struct Events {
    pub tx: broadcast::Sender<SupervisionEvent>,
    pub path: Arc<str>,
    pub strategy: Strategy,
}

impl Events {
    pub fn emit(&self, kind: EventKind) {
        let event = SupervisionEvent {
            supervisor: self.path.clone(),
            strategy: self.strategy,
            kind,
        };
        trace(&event);
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event);
        }
    }
}

/// How loud an event is logged.
enum Loudness {
    Debug,
    Info,
    Warn,
    Error,
}

/// How loud an event is and what its log line says.
fn headline(kind: &EventKind) -> (Loudness, &'static str) {
    match kind {
        EventKind::ChildStarted { .. } | EventKind::ChildRestarted { .. } => {
            (Loudness::Debug, "child started")
        }
        EventKind::ChildStartFailed { .. } => (Loudness::Error, "child failed to start"),
        EventKind::ChildExited { reason, .. } if reason.is_normal() => {
            (Loudness::Info, "child exited")
        }
        EventKind::ChildExited { .. } => (Loudness::Error, "child exited"),
        EventKind::ChildTerminated { .. } => (Loudness::Info, "child terminated by supervisor"),
        EventKind::RestartScheduled { .. } => (Loudness::Warn, "restart scheduled"),
        EventKind::IntensityExceeded { .. } => {
            (Loudness::Error, "restart intensity exceeded, escalating")
        }
        EventKind::AutoShutdownTriggered { .. } => {
            (Loudness::Info, "significant child exited, shutting down")
        }
        EventKind::SupervisorStopped { .. } => (Loudness::Info, "supervisor stopped"),
    }
}

/// The numbers an event carries besides its child and reason, each if it has it.
#[derive(Default)]
struct Details {
    generation: Option<u64>,
    restart: Option<Restart>,
    backoff: Option<Duration>,
    restarts_in_window: Option<usize>,
    max_restarts: Option<u32>,
    period: Option<Duration>,
}

fn details(kind: &EventKind) -> Details {
    match kind {
        EventKind::ChildStarted {
            generation,
            restart,
            ..
        }
        | EventKind::ChildRestarted {
            generation,
            restart,
            ..
        }
        | EventKind::ChildStartFailed {
            generation,
            restart,
            ..
        }
        | EventKind::ChildExited {
            generation,
            restart,
            ..
        }
        | EventKind::ChildTerminated {
            generation,
            restart,
            ..
        } => Details {
            generation: Some(*generation),
            restart: Some(*restart),
            ..Details::default()
        },
        EventKind::RestartScheduled {
            generation,
            restart,
            backoff,
            restarts_in_window,
            max_restarts,
            ..
        } => Details {
            generation: Some(*generation),
            restart: Some(*restart),
            backoff: Some(*backoff),
            restarts_in_window: Some(*restarts_in_window),
            max_restarts: Some(*max_restarts),
            period: None,
        },
        EventKind::IntensityExceeded {
            generation,
            restarts_in_window,
            max_restarts,
            period,
            ..
        } => Details {
            generation: Some(*generation),
            restarts_in_window: Some(*restarts_in_window),
            max_restarts: Some(*max_restarts),
            period: Some(*period),
            ..Details::default()
        },
        EventKind::AutoShutdownTriggered { generation, .. } => Details {
            generation: Some(*generation),
            ..Details::default()
        },
        EventKind::SupervisorStopped { .. } => Details::default(),
    }
}

/// Logs `event` as one structured `tracing` event; fields an event does not have are left out.
fn trace(event: &SupervisionEvent) {
    let (loudness, message) = headline(&event.kind);
    let (child, reason) = event.kind.subject();
    let d = details(&event.kind);
    macro_rules! emit {
        ($level:ident) => {
            tracing::$level!(
                supervisor = &*event.supervisor,
                strategy = %event.strategy,
                child = child.map(tracing::field::display),
                generation = d.generation,
                restart = d.restart.map(tracing::field::display),
                reason = reason.map(|r| tracing::field::debug(r.chain())),
                backoff = d.backoff.map(tracing::field::debug),
                restarts_in_window = d.restarts_in_window,
                max_restarts = d.max_restarts,
                period = d.period.map(tracing::field::debug),
                "{message}"
            )
        };
    }
    match loudness {
        Loudness::Debug => emit!(debug),
        Loudness::Info => emit!(info),
        Loudness::Warn => emit!(warn),
        Loudness::Error => emit!(error),
    }
}
