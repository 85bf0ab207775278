//! [`Trust`]: the node's live [`Policy`] (replaced when the allow file is re-read, e.g. on
//! SIGHUP, and announced to every connection so that rights change on live connections too)
//! and the browser origins allowed to open websockets; [`TrustConfig`]: what the embedding API
//! and the command line give to build it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::rights::{Policy, Rules, RulesError, Unprotected, is_loopback};
use crate::identity::PublicKey;
use crate::sync::Rights;

/// Why the trust settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The allow file cannot be read or has a bad line.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// A node without rules would listen beyond loopback.
    #[error(transparent)]
    Unprotected(#[from] Unprotected),
}

/// The trust settings of a node before it starts.
#[derive(Clone, Debug, Default)]
pub struct TrustConfig {
    rules: Rules,
    file: Option<PathBuf>,
    open: bool,
    origins: Vec<String>,
}

impl TrustConfig {
    /// Gives `key` `rights` (besides any it has).
    pub fn allow(&mut self, key: PublicKey, rights: Rights) {
        self.rules.allow(key, rights);
    }

    /// Reads rules from `path` at start and whenever [`Trust::reload`] is called.
    pub fn allow_file(&mut self, path: PathBuf) {
        self.file = Some(path);
    }

    /// Lets every key read (see [`Policy`]).
    pub fn open(&mut self, open: bool) {
        self.open = open;
    }

    /// Lets web pages of `origin` (e.g. `https://app.example.com`) open websockets.
    pub fn allow_origin(&mut self, origin: String) {
        self.origins.push(origin);
    }

    /// The live trust of a node listening on `listen`: reads the allow file and refuses a
    /// node without rules listening beyond loopback.
    pub fn build(&self, listen: Option<&str>) -> Result<Trust, TrustError> {
        let file = match &self.file {
            Some(path) => Some(Rules::read(path)?),
            None => None,
        };
        let loopback_only = listen.is_none_or(is_loopback);
        let policy = Policy::new(self.rules.clone(), file, self.open, loopback_only);
        if let Some(listen) = listen {
            policy.check_protected(listen)?;
        }
        let (changes, _) = watch::channel(0);
        Ok(Trust {
            policy: RwLock::new(Arc::new(policy)),
            file: self.file.clone(),
            origins: self.origins.iter().map(|o| normalize_origin(o)).collect(),
            changes,
        })
    }
}

/// An origin as compared: lower case, without a trailing slash.
pub(crate) fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// What the allow file said when it was re-read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// New rules are in force: this many keys are listed in the file.
    Rules(usize),
    /// There is no allow file to re-read.
    NoFile,
}

/// The node's live policy and allowed origins.
#[derive(Debug)]
pub struct Trust {
    policy: RwLock<Arc<Policy>>,
    file: Option<PathBuf>,
    origins: Vec<String>,
    changes: watch::Sender<u64>,
}

impl Trust {
    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the allow file; new rules take effect at once on every connection. An
    /// invalid file keeps the rules in force.
    pub fn reload(&self) -> Result<Reloaded, TrustError> {
        let Some(path) = &self.file else {
            return Ok(Reloaded::NoFile);
        };
        let rules = Rules::read(path)?;
        let listed = rules.len();
        let next = Arc::new(self.policy().with_file(rules));
        match self.policy.write() {
            Ok(mut p) => *p = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        self.changes.send_modify(|generation| *generation += 1);
        Ok(Reloaded::Rules(listed))
    }

    /// The allow file, if there is one.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }

    /// The origins allowed besides the node's own, normalized.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// A stream that yields each time the policy changes (for `ctx.add_stream`).
    pub fn changes(&self) -> impl futures_util::Stream<Item = RulesChanged> + 'static {
        futures_util::stream::unfold(self.changes.subscribe(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some((RulesChanged, rx))
        })
    }
}

/// The policy changed: connections decide their peers' rights again.
#[derive(Clone, Copy, Debug)]
pub struct RulesChanged;
