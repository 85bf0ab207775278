//! Restart strategies and auto-shutdown: which children a failure affects.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// Which children are restarted when one of them has to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the child that exited.
    OneForOne,
    /// Every child: the others are stopped (reverse order) and all restarted in order.
    OneForAll,
    /// The child that exited and every child started after it.
    RestForOne,
    /// A dynamic pool: children added at run time, each restarted on its own.
    SimpleOneForOne,
}

impl Strategy {
    /// Indices (in start order) affected when the child at `failed` of `len` is restarted.
    pub(crate) fn affected(self, failed: usize, len: usize) -> Range<usize> {
        match self {
            Strategy::OneForOne | Strategy::SimpleOneForOne => failed..failed + 1,
            Strategy::OneForAll => 0..len,
            Strategy::RestForOne => failed..len,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
            Strategy::SimpleOneForOne => "simple_one_for_one",
        })
    }
}

/// When the exit of significant children shuts their supervisor down (OTP's `auto_shutdown`).
///
/// Only exits a child makes by itself count; children the supervisor stops (shutdown, group
/// restart, `terminate_child`) never trigger it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoShutdown {
    /// Significant children are ignored.
    #[default]
    Never,
    /// Shut down when any significant child exits for good.
    AnySignificant,
    /// Shut down when every significant child has exited for good.
    AllSignificant,
}

/// How a supervisor stops one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Kill at once: `stopping()` is not consulted.
    BrutalKill,
    /// Ask it to stop; kill it if it has not stopped after the duration.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes (default for sub-supervisors).
    Infinity,
}

impl Default for Shutdown {
    /// Five seconds, OTP's default for workers.
    fn default() -> Self {
        Shutdown::Timeout(Duration::from_secs(5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_for_one_affects_the_failed_child_and_later_ones() {
        assert_eq!(Strategy::RestForOne.affected(1, 4), 1..4);
        assert_eq!(Strategy::OneForAll.affected(1, 4), 0..4);
        assert_eq!(Strategy::OneForOne.affected(1, 4), 1..2);
    }
}
