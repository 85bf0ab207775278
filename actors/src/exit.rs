//! Why a child stopped: [`ExitReason`], and the error chain it carries.
//!
//! An exit reason is not an error of the supervisor; it is the fact a supervisor decides on.
//! `Failed` and `StartFailed` keep the original error (behind an `Arc`, so events can be
//! cloned to every subscriber) with its whole `source()` chain.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The messages of `error` and of everything reachable through its `source()`, outermost
/// first.
fn chain_of(error: &dyn Error) -> Vec<String> {
    let mut out = vec![error.to_string()];
    let mut next = error.source();
    while let Some(err) = next {
        out.push(err.to_string());
        next = err.source();
    }
    out
}

/// `error` and everything reachable through its `source()`, joined by `": "`, outermost
/// first: one line for a log or a refusal.
pub fn error_chain(error: &dyn Error) -> String {
    chain_of(error).join(": ")
}

/// A boxed error as children hand it to the runtime.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// An error together with its `source()` chain, shareable between events and reports.
#[derive(Clone)]
pub struct ErrorChain {
    error: Arc<dyn Error + Send + Sync + 'static>,
}

impl ErrorChain {
    /// Captures `error` and everything reachable through its `source()`.
    pub fn new<E: Error + Send + Sync + 'static>(error: E) -> Self {
        Self {
            error: Arc::new(error),
        }
    }

    /// Captures an already boxed error.
    pub fn from_boxed(error: BoxError) -> Self {
        Self {
            error: Arc::from(error),
        }
    }

    /// The outermost error.
    pub fn error(&self) -> &(dyn Error + Send + Sync + 'static) {
        &*self.error
    }

    /// Every message of the chain, outermost first, root cause last.
    pub fn messages(&self) -> Vec<String> {
        chain_of(&*self.error)
    }
}

impl fmt::Display for ErrorChain {
    /// The whole chain, joined by `": "`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.messages().join(": "))
    }
}

impl fmt::Debug for ErrorChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ErrorChain").field(&self.messages()).finish()
    }
}

/// Why a child (or a supervisor) stopped.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ExitReason {
    /// It stopped itself (`ctx.stop()`), its job done.
    Normal,
    /// It was asked to stop by its supervisor, or stopped itself with [`ExitReason::Shutdown`].
    Shutdown,
    /// It failed with an error (see [`crate::fail`]).
    Failed(ErrorChain),
    /// A handler (or hook) panicked.
    Panicked {
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic, when known.
        location: Option<String>,
    },
    /// It was killed: `BrutalKill`, or it outlived its shutdown timeout.
    Killed,
    /// Its factory returned an error (or panicked), so it never ran.
    StartFailed(ErrorChain),
}

impl ExitReason {
    /// `Normal` and `Shutdown`: exits a `Transient` child is not restarted for.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }

    /// Short name of the variant: `normal`, `shutdown`, `failed`, `panicked`, `killed`,
    /// `start_failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            ExitReason::Normal => "normal",
            ExitReason::Shutdown => "shutdown",
            ExitReason::Failed(_) => "failed",
            ExitReason::Panicked { .. } => "panicked",
            ExitReason::Killed => "killed",
            ExitReason::StartFailed(_) => "start_failed",
        }
    }

    /// The reason with its whole error chain, outermost first.
    pub fn chain(&self) -> Vec<String> {
        chain_of(self)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Failed(_) => f.write_str("failed"),
            ExitReason::Panicked { message, location } => match location {
                Some(loc) => write!(f, "panicked at {loc}: {message}"),
                None => write!(f, "panicked: {message}"),
            },
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::StartFailed(_) => f.write_str("start failed"),
        }
    }
}

impl Error for ExitReason {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ExitReason::Failed(chain) | ExitReason::StartFailed(chain) => Some(chain.error()),
            _ => None,
        }
    }
}

/// A panic caught while starting a child, as an error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("factory panicked{}: {message}", location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default())]
pub struct FactoryPanicked {
    /// The panic message.
    pub message: String,
    /// Where it panicked, when known.
    pub location: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn failed_reason_keeps_the_whole_source_chain() {
        let reason = ExitReason::Failed(ErrorChain::new(Outer(std::io::Error::other("disk"))));
        assert_eq!(reason.chain(), vec!["failed", "outer", "disk"]);
        assert!(!reason.is_normal());
        assert!(ExitReason::Shutdown.is_normal());
    }
}
