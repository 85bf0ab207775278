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
        match &self.kind {
            EventKind::ChildStarted { child, .. }
            | EventKind::ChildRestarted { child, .. }
            | EventKind::ChildStartFailed { child, .. }
            | EventKind::ChildExited { child, .. }
            | EventKind::ChildTerminated { child, .. }
            | EventKind::RestartScheduled { child, .. }
            | EventKind::IntensityExceeded { child, .. }
            | EventKind::AutoShutdownTriggered { child, .. } => Some(child),
            EventKind::SupervisorStopped { .. } => None,
        }
    }

    /// The exit reason the event carries, if any.
    pub fn reason(&self) -> Option<&ExitReason> {
        match &self.kind {
            EventKind::ChildStartFailed { reason, .. }
            | EventKind::ChildExited { reason, .. }
            | EventKind::ChildTerminated { reason, .. }
            | EventKind::RestartScheduled { reason, .. }
            | EventKind::IntensityExceeded { reason, .. }
            | EventKind::SupervisorStopped { reason } => Some(reason),
            _ => None,
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

fn trace(event: &SupervisionEvent) {
    let sup = &*event.supervisor;
    match &event.kind {
        EventKind::ChildStarted {
            child,
            generation,
            restart,
        }
        | EventKind::ChildRestarted {
            child,
            generation,
            restart,
        } => tracing::debug!(
            supervisor = sup, strategy = %event.strategy, child = %child, generation, restart = %restart,
            "child started"
        ),
        EventKind::ChildStartFailed {
            child,
            generation,
            restart,
            reason,
        } => tracing::error!(
            supervisor = sup, strategy = %event.strategy, child = %child, generation, restart = %restart,
            reason = ?reason.chain(), "child failed to start"
        ),
        EventKind::ChildExited {
            child,
            generation,
            restart,
            reason,
        } => {
            if reason.is_normal() {
                tracing::info!(supervisor = sup, strategy = %event.strategy, child = %child, generation,
                    restart = %restart, reason = %reason, "child exited");
            } else {
                tracing::error!(supervisor = sup, strategy = %event.strategy, child = %child, generation,
                    restart = %restart, reason = ?reason.chain(), "child exited");
            }
        }
        EventKind::ChildTerminated {
            child,
            generation,
            restart,
            reason,
        } => tracing::info!(
            supervisor = sup, strategy = %event.strategy, child = %child, generation, restart = %restart,
            reason = %reason, "child terminated by supervisor"
        ),
        EventKind::RestartScheduled {
            child,
            generation,
            restart,
            reason,
            backoff,
            restarts_in_window,
            max_restarts,
        } => tracing::warn!(
            supervisor = sup, strategy = %event.strategy, child = %child, generation, restart = %restart,
            reason = ?reason.chain(), backoff = ?backoff, restarts_in_window, max_restarts,
            "restart scheduled"
        ),
        EventKind::IntensityExceeded {
            child,
            generation,
            reason,
            restarts_in_window,
            max_restarts,
            period,
        } => tracing::error!(
            supervisor = sup, strategy = %event.strategy, child = %child, generation, reason = ?reason.chain(),
            restarts_in_window, max_restarts, period = ?period,
            "restart intensity exceeded, escalating"
        ),
        EventKind::AutoShutdownTriggered { child, generation } => tracing::info!(
            supervisor = sup, strategy = %event.strategy, child = %child, generation,
            "significant child exited, shutting down"
        ),
        EventKind::SupervisorStopped { reason } => tracing::info!(
            supervisor = sup, strategy = %event.strategy, reason = ?reason.chain(), "supervisor stopped"
        ),
    }
}
