//! Who may do what on this node (DESIGN §11), as a pure [`Policy`]: the rules given by
//! `--allow KEY` (read and write), `--allow-read KEY`, `--allow-write KEY`, `--allow-file
//! FILE` and `--open`, and the rights they give one key on one connection.
//!
//! - **With rules** (any `--allow…` flag, or an allow file even if empty) a listed key gets
//!   its rights and every other key is refused, on accepted and dialled connections alike.
//! - **Without rules** every key may read and write on the connections this node dials, and
//!   on the ones it accepts when every listener is on loopback; a node listening elsewhere
//!   must have rules or `--open` ([`Policy::check_protected`]).
//! - **`--open`** gives every key read: unknown keys read only, listed keys their rights and
//!   read. Connections this node dials without rules keep read and write.
//!
//! The allow file has one rule a line, `KEY RIGHTS` with `RIGHTS` one of `read`, `write`,
//! `read,write`; blank lines and `#` comments are ignored; a key listed twice gets both.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::identity::PublicKey;
pub use crate::sync::Rights;
use crate::sync::Role;

/// Why rules could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The allow file cannot be read.
    #[error("cannot read the allow file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the allow file is not a rule.
    #[error("allow file {path}, line {line}: {detail}")]
    Line {
        /// The file.
        path: PathBuf,
        /// Its line number, from 1.
        line: usize,
        /// What is wrong with it.
        detail: String,
    },
}

/// A node without rules would listen beyond loopback.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to listen on {listen} without rules: anyone who reaches it could read and write every CDVCS of this node. Admit keys with --allow KEY, --allow-read KEY, --allow-write KEY or --allow-file FILE (a node prints its key with `replikativ id`), or give --open to let unknown keys read only"
)]
pub struct Unprotected {
    /// The listen address.
    pub listen: String,
}

/// Keys and their rights.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules(BTreeMap<PublicKey, Rights>);

impl Rules {
    /// No rule.
    pub fn new() -> Rules {
        Rules::default()
    }

    /// Gives `key` `rights` besides those it has.
    pub fn allow(&mut self, key: PublicKey, rights: Rights) {
        let entry = self.0.entry(key).or_default();
        *entry = entry.union(rights);
    }

    /// The rights listed for `key`.
    pub fn get(&self, key: &PublicKey) -> Option<Rights> {
        self.0.get(key).copied()
    }

    /// Whether no key is listed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys are listed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The rules of an allow file's `text`; errors name `path` and the line.
    pub fn parse(text: &str, path: &Path) -> Result<Rules, RulesError> {
        let mut rules = Rules::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let bad = |detail: String| RulesError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                detail,
            };
            let mut words = line.split_whitespace();
            let (Some(key), Some(rights), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad(format!("{line:?} is not `KEY read|write|read,write`")));
            };
            let key: PublicKey = key.parse().map_err(|e| bad(format!("{e}")))?;
            rules.allow(key, parse_rights(rights).map_err(bad)?);
        }
        Ok(rules)
    }

    /// Reads the allow file `path`.
    pub fn read(path: &Path) -> Result<Rules, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Rules::parse(&text, path)
    }
}

/// `read`, `write`, `read,write` (or `write,read`).
fn parse_rights(text: &str) -> Result<Rights, String> {
    let mut rights = Rights::NONE;
    for word in text.split(',') {
        rights = rights.union(match word.trim() {
            "read" => Rights::READ,
            "write" => Rights::WRITE,
            other => {
                return Err(format!(
                    "unknown right {other:?} (expected read, write or read,write)"
                ));
            }
        });
    }
    Ok(rights)
}

/// The node's policy: rules from flags and from the allow file, `--open`, and whether every
/// listener is on loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    flags: Rules,
    file: Option<Rules>,
    open: bool,
    loopback_only: bool,
}

impl Policy {
    /// A policy from the flags' rules, the allow file's (`None` without one), `--open`, and
    /// whether every listener is on loopback (true without a listener).
    pub fn new(flags: Rules, file: Option<Rules>, open: bool, loopback_only: bool) -> Policy {
        Policy {
            flags,
            file,
            open,
            loopback_only,
        }
    }

    /// The same policy with the allow file's rules replaced.
    pub fn with_file(&self, file: Rules) -> Policy {
        Policy {
            file: Some(file),
            ..self.clone()
        }
    }

    /// Whether there are rules: an `--allow…` flag, or an allow file (even an empty one).
    pub fn has_rules(&self) -> bool {
        !self.flags.is_empty() || self.file.is_some()
    }

    /// The rights listed for `key` by the flags and the allow file together.
    pub fn listed(&self, key: &PublicKey) -> Option<Rights> {
        let from_file = self.file.as_ref().and_then(|f| f.get(key));
        match (self.flags.get(key), from_file) {
            (Some(a), Some(b)) => Some(a.union(b)),
            (a, b) => a.or(b),
        }
    }

    /// The rights of `key` on a connection where this node is `ours`; `None`: refused.
    pub fn rights(&self, key: &PublicKey, ours: Role) -> Option<Rights> {
        let open = self.open.then_some(Rights::READ);
        if self.has_rules() {
            return match (self.listed(key), open) {
                (Some(r), Some(o)) => Some(r.union(o)),
                (r, o) => r.or(o),
            };
        }
        match ours {
            Role::Dialler => Some(Rights::ALL),
            Role::Acceptor if self.loopback_only => Some(Rights::ALL),
            Role::Acceptor => open,
        }
    }

    /// Refuses a node without rules and without `--open` that listens on `listen` beyond
    /// loopback.
    pub fn check_protected(&self, listen: &str) -> Result<(), Unprotected> {
        if self.has_rules() || self.open || self.loopback_only {
            return Ok(());
        }
        Err(Unprotected {
            listen: listen.to_string(),
        })
    }
}

/// Whether `listen` (`HOST:PORT`) is on loopback: 127.0.0.0/8, `::1`, `localhost`, or a name
/// every address of which is one of those. A name that does not resolve is not.
pub fn is_loopback(listen: &str) -> bool {
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return addr.ip().is_loopback();
    }
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
#[path = "rights/tests.rs"]
mod tests;
