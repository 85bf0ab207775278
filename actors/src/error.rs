//! Errors of the supervision API (`SupervisionError`).

use std::sync::Arc;
use std::time::Duration;

use crate::child_spec::ChildId;
use crate::exit::ExitReason;
use crate::tree::ChildState;

/// What went wrong talking to, or inside, a supervisor.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisionError {
    /// A child's start failed; children started before it were stopped again (rollback).
    #[error("supervisor {supervisor}: child {child} failed to start")]
    StartFailed {
        /// Path of the supervisor.
        supervisor: Arc<str>,
        /// The child that failed.
        child: ChildId,
        /// Why (a `StartFailed` reason with the factory's error chain).
        #[source]
        reason: ExitReason,
    },
    /// More restarts than allowed within the period: the supervisor stopped its children and
    /// exited with this (its parent then applies its own strategy).
    #[error(
        "supervisor {supervisor}: restart intensity exceeded ({restarts_in_window} restarts within {period:?}, limit {max_restarts}), last exit of child {child}"
    )]
    IntensityExceeded {
        /// Path of the supervisor.
        supervisor: Arc<str>,
        /// The child whose exit tipped it over.
        child: ChildId,
        /// Restarts counted in the window.
        restarts_in_window: usize,
        /// The limit.
        max_restarts: u32,
        /// The window length.
        period: Duration,
        /// The last child's exit reason.
        #[source]
        reason: ExitReason,
    },
    /// No child with that id (or registered name).
    #[error("supervisor {supervisor} has no child {child}")]
    NoSuchChild {
        /// Path of the supervisor.
        supervisor: Arc<str>,
        /// The id asked for.
        child: String,
    },
    /// The child exists but has no running incarnation right now.
    #[error("child {child} of supervisor {supervisor} is {state}, not running")]
    NotRunning {
        /// Path of the supervisor.
        supervisor: Arc<str>,
        /// The child.
        child: ChildId,
        /// Its current state.
        state: ChildState,
    },
    /// The child is running but is not of the type asked for.
    #[error("child {child} of supervisor {supervisor} is not a {expected}")]
    WrongType {
        /// Path of the supervisor.
        supervisor: Arc<str>,
        /// The child.
        child: ChildId,
        /// The type asked for.
        expected: &'static str,
    },
    /// `start_child` with an id that is already taken.
    #[error("supervisor {supervisor} already has a child {child}")]
    DuplicateChild {
        /// Path of the supervisor.
        supervisor: Arc<str>,
        /// The id.
        child: ChildId,
    },
    /// A child spec that OTP would refuse (e.g. a significant permanent child).
    #[error("invalid child spec {child}: {problem}")]
    InvalidSpec {
        /// The child.
        child: ChildId,
        /// What is wrong.
        problem: &'static str,
    },
    /// The operation needs a stopped child (restart/delete) or a running supervisor.
    #[error("child {child} of supervisor {supervisor} is {state}")]
    WrongState {
        /// Path of the supervisor.
        supervisor: Arc<str>,
        /// The child.
        child: ChildId,
        /// Its current state.
        state: ChildState,
    },
    /// The supervisor is shutting down or gone.
    #[error("supervisor {supervisor} is not running")]
    SupervisorGone {
        /// Path of the supervisor.
        supervisor: Arc<str>,
    },
}
