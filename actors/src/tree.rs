//! Introspection: [`ChildInfo`], [`ChildCounts`] and the printable [`SupervisorTree`].

use std::fmt;
use std::sync::Arc;

use crate::child_spec::ChildId;
use crate::restart::Restart;
use crate::strategy::Strategy;

/// Whether a child currently has a running incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// An incarnation is running.
    Running,
    /// It exited and a restart is pending (e.g. waiting for its backoff, or its start keeps
    /// failing).
    Restarting,
    /// Not running and not going to be restarted (its spec is kept).
    Stopped,
}

impl fmt::Display for ChildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChildState::Running => "running",
            ChildState::Restarting => "restarting",
            ChildState::Stopped => "stopped",
        })
    }
}

/// One child as `which_children` reports it.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// The child's id.
    pub id: ChildId,
    /// Its registered name, if any.
    pub name: Option<Arc<str>>,
    /// Running, restarting or stopped.
    pub state: ChildState,
    /// Latest incarnation (1 = first start).
    pub generation: u64,
    /// Restarts so far.
    pub restarts: u32,
    /// Its restart type.
    pub restart: Restart,
    /// Whether it is a supervisor.
    pub supervisor: bool,
    /// Whether it is significant.
    pub significant: bool,
}

/// Totals as `count_children` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildCounts {
    /// Child specs held.
    pub specs: usize,
    /// Children with a running incarnation.
    pub active: usize,
    /// Children waiting for a restart.
    pub restarting: usize,
    /// Child specs that are supervisors.
    pub supervisors: usize,
    /// Child specs that are workers.
    pub workers: usize,
}

impl ChildCounts {
    pub(crate) fn of(children: &[ChildInfo]) -> Self {
        let mut counts = ChildCounts {
            specs: children.len(),
            ..Self::default()
        };
        for c in children {
            match c.state {
                ChildState::Running => counts.active += 1,
                ChildState::Restarting => counts.restarting += 1,
                ChildState::Stopped => {}
            }
            if c.supervisor {
                counts.supervisors += 1;
            } else {
                counts.workers += 1;
            }
        }
        counts
    }
}

/// A snapshot of a supervisor and, recursively, its sub-supervisors.
#[derive(Debug, Clone)]
pub struct SupervisorTree {
    /// The supervisor's path.
    pub path: Arc<str>,
    /// Its strategy.
    pub strategy: Strategy,
    /// Its children in start order, each with its own subtree when it is a running supervisor.
    pub children: Vec<(ChildInfo, Option<SupervisorTree>)>,
}

impl SupervisorTree {
    fn write(&self, f: &mut fmt::Formatter<'_>, prefix: &str) -> fmt::Result {
        let count = self.children.len();
        for (i, (info, sub)) in self.children.iter().enumerate() {
            let last = i + 1 == count;
            let (branch, indent) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            write!(
                f,
                "{prefix}{branch}{} [{} {}, gen {}, restarts {}]",
                info.id, info.restart, info.state, info.generation, info.restarts
            )?;
            match sub {
                Some(sub) => {
                    writeln!(f, " ({})", sub.strategy)?;
                    sub.write(f, &format!("{prefix}{indent}"))?;
                }
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for SupervisorTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({})", self.path, self.strategy)?;
        self.write(f, "")
    }
}
