//! SIGTERM and SIGINT as an awaitable stream, for commands that flush before exiting; SIGHUP
//! re-reads what the command says (a node's allow file) and never stops it.

use anyhow::{Context as _, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signals of a command.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    reload: Option<Box<dyn FnMut()>>,
}

impl Signals {
    /// Installs the handlers (inside a runtime).
    pub fn install() -> Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
            reload: None,
        })
    }

    /// What to do on SIGHUP from now on.
    pub fn on_hangup(&mut self, reload: impl FnMut() + 'static) {
        self.reload = Some(Box::new(reload));
    }

    /// Waits for the next SIGTERM or SIGINT, carrying out every SIGHUP meanwhile.
    pub async fn recv(&mut self) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => match &mut self.reload {
                    Some(reload) => reload(),
                    None => tracing::info!("SIGHUP: nothing to re-read yet"),
                },
            }
        }
    }
}
