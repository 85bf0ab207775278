//! Restart types and restart intensity.
//!
//! [`Restart`] decides per child whether an exit leads to a restart. [`Intensity`] bounds how
//! many restarts a supervisor performs in a sliding window; [`RestartWindow`] is that window,
//! a pure value driven by instants from a [`crate::Clock`].

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::exit::ExitReason;

/// When a child is restarted after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after an abnormal exit (not `Normal`, not `Shutdown`).
    Transient,
    /// Never restarted; its spec is dropped when it exits, also as collateral of a group restart.
    Temporary,
}

impl Restart {
    /// Whether an exit with `reason` leads to a restart.
    pub fn restarts_after(self, reason: &ExitReason) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        }
    }
}

impl fmt::Display for Restart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Restart::Permanent => "permanent",
            Restart::Transient => "transient",
            Restart::Temporary => "temporary",
        })
    }
}

/// At most `max_restarts` restarts within any `period`; one more and the supervisor gives up
/// and escalates to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intensity {
    /// Restarts tolerated within `period`.
    pub max_restarts: u32,
    /// Length of the sliding window.
    pub period: Duration,
}

impl Intensity {
    /// `max_restarts` in `period`.
    pub fn new(max_restarts: u32, period: Duration) -> Self {
        Self {
            max_restarts,
            period,
        }
    }
}

impl Default for Intensity {
    /// OTP's default: 1 restart in 5 seconds.
    fn default() -> Self {
        Self::new(1, Duration::from_secs(5))
    }
}

/// Outcome of recording one restart in the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowCheck {
    /// Restarts within the window, this one included.
    pub restarts_in_window: usize,
    /// More than `max_restarts` within `period`.
    pub exceeded: bool,
}

/// The instants of recent restarts of one supervisor (over all its children).
#[derive(Debug, Default)]
pub(crate) struct RestartWindow {
    stamps: VecDeque<Instant>,
}

impl RestartWindow {
    /// Records a restart at `now`, forgets those older than `period`, and checks the limit.
    pub fn record(&mut self, now: Instant, intensity: Intensity) -> WindowCheck {
        self.stamps.push_back(now);
        while let Some(&oldest) = self.stamps.front() {
            if now.saturating_duration_since(oldest) > intensity.period {
                self.stamps.pop_front();
            } else {
                break;
            }
        }
        let restarts_in_window = self.stamps.len();
        WindowCheck {
            restarts_in_window,
            exceeded: restarts_in_window > intensity.max_restarts as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_restarts_only_after_abnormal_exits() {
        assert!(!Restart::Transient.restarts_after(&ExitReason::Normal));
        assert!(!Restart::Transient.restarts_after(&ExitReason::Shutdown));
        assert!(Restart::Transient.restarts_after(&ExitReason::Killed));
        assert!(Restart::Permanent.restarts_after(&ExitReason::Normal));
        assert!(!Restart::Temporary.restarts_after(&ExitReason::Killed));
    }

    #[test]
    fn window_exceeds_on_the_restart_after_max() {
        let intensity = Intensity::new(2, Duration::from_secs(5));
        let mut window = RestartWindow::default();
        let t0 = Instant::now();
        assert!(!window.record(t0, intensity).exceeded);
        assert!(
            !window
                .record(t0 + Duration::from_secs(1), intensity)
                .exceeded
        );
        let third = window.record(t0 + Duration::from_secs(2), intensity);
        assert!(third.exceeded);
        assert_eq!(third.restarts_in_window, 3);
    }

    #[test]
    fn restarts_spaced_wider_than_the_period_never_exceed() {
        let intensity = Intensity::new(1, Duration::from_secs(5));
        let mut window = RestartWindow::default();
        let t0 = Instant::now();
        for i in 0..20 {
            let check = window.record(t0 + Duration::from_secs(6 * i), intensity);
            assert!(!check.exceeded, "restart {i} exceeded");
            assert_eq!(check.restarts_in_window, 1);
        }
    }
}
