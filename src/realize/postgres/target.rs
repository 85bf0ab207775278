//! Where a Postgres sink connects, and with which credentials: a `postgres://` URL, completed
//! as libpq completes it — by the standard `PG*` environment variables (`PGHOST`, `PGPORT`,
//! `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGOPTIONS`,
//! `PGSSLMODE`, `PGSSLROOTCERT`, `PGPASSFILE`) for what the URL leaves out, and by the
//! password file (`~/.pgpass` or `PGPASSFILE`, ignored unless private, as libpq does) when no
//! password is given. So a password never has to be on the command line.
//!
//! `sslmode` (URL or `PGSSLMODE`): `disable`; `prefer` (the default) and `require` encrypt
//! without checking the server's certificate, as libpq does — unless a root certificate is
//! given (`sslrootcert` or `~/.postgresql/root.crt`), which `require` then checks as
//! `verify-ca` does; `verify-ca` checks the chain, `verify-full` the chain and the host name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::config::{Host, SslMode};

use super::tls::{PgTls, Verify};

/// Why a Postgres URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Not a `postgres://` or `postgresql://` URL.
    #[error("{shown}: not a postgres:// URL")]
    NotUrl {
        /// The URL without its password.
        shown: String,
    },
    /// The URL or an environment variable holds a value the client refuses.
    #[error("{shown}: {reason}")]
    Invalid {
        /// The URL without its password.
        shown: String,
        /// What is wrong.
        reason: String,
    },
}

/// A database to realize into or query: connection settings and TLS.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    tls: PgTls,
    shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// `url` with the password of its user-info replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl PgTarget {
    /// The target of `url` completed from the process environment and password file.
    pub fn parse(url: &str) -> Result<PgTarget, TargetError> {
        Self::parse_with(url, &|name| std::env::var(name).ok())
    }

    /// Like [`parse`](Self::parse) with `env` in place of the process environment.
    pub fn parse_with(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgTarget, TargetError> {
        let shown = redact(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(TargetError::NotUrl { shown });
        }
        let invalid = |reason: String| TargetError::Invalid {
            shown: shown.clone(),
            reason,
        };
        // Take out what this module handles itself (the client would refuse them).
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (mut own, mut kept) = (Vec::new(), Vec::new());
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" | "sslrootcert" | "passfile" => own.push((key, decode(value))),
                _ => kept.push(pair),
            }
        }
        let own_param = |key: &str| {
            own.iter()
                .rev()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        let client_url = match kept.is_empty() {
            true => base.to_string(),
            false => format!("{base}?{}", kept.join("&")),
        };
        let mut config: postgres::Config = client_url
            .parse()
            .map_err(|e: postgres::Error| invalid(e.to_string()))?;
        if config.get_hosts().is_empty() {
            let port = config.get_ports().first().copied();
            match env("PGHOST") {
                Some(hosts) => hosts.split(',').for_each(|h| {
                    config.host(h);
                }),
                None => default_host(&mut config, port.or_else(|| env_port(env)).unwrap_or(5432)),
            }
        }
        if config.get_ports().is_empty()
            && let Some(port) = env_port(env)
        {
            config.port(port);
        }
        if config.get_user().is_none()
            && let Some(user) = env("PGUSER")
        {
            config.user(&user);
        }
        if config.get_dbname().is_none()
            && let Some(db) = env("PGDATABASE")
        {
            config.dbname(&db);
        }
        if config.get_options().is_none()
            && let Some(options) = env("PGOPTIONS")
        {
            config.options(&options);
        }
        match (config.get_application_name(), env("PGAPPNAME")) {
            (Some(_), _) => {}
            (None, Some(name)) => drop(config.application_name(&name)),
            (None, None) => drop(config.application_name("replikativ")),
        }
        if config.get_connect_timeout().is_none() {
            let secs = env("PGCONNECT_TIMEOUT")
                .map(|s| {
                    s.parse::<u64>()
                        .map_err(|_| invalid(format!("PGCONNECT_TIMEOUT={s}")))
                })
                .transpose()?
                .unwrap_or(10);
            config.connect_timeout(Duration::from_secs(secs.max(2)));
        }
        if config.get_password().is_none() {
            match env("PGPASSWORD") {
                Some(password) => drop(config.password(password)),
                None => {
                    let file = own_param("passfile")
                        .or_else(|| env("PGPASSFILE"))
                        .map(PathBuf::from)
                        .or_else(|| home(env).map(|h| h.join(".pgpass")));
                    if let Some(password) = file.and_then(|f| passfile_password(&f, &config)) {
                        config.password(password);
                    }
                }
            }
        }
        // Keep dead connections from holding locks for long (e.g. a killed analyzer's host).
        config.keepalives_idle(Duration::from_secs(30));
        let mode = own_param("sslmode")
            .or_else(|| env("PGSSLMODE"))
            .unwrap_or_else(|| "prefer".into());
        let root = own_param("sslrootcert")
            .or_else(|| env("PGSSLROOTCERT"))
            .map(PathBuf::from)
            .or_else(|| {
                let default = home(env)?.join(".postgresql/root.crt");
                default.exists().then_some(default)
            });
        let (ssl, verify) = match (mode.as_str(), root) {
            ("disable", _) => (SslMode::Disable, None),
            ("allow" | "prefer", _) => (SslMode::Prefer, Some(Verify::Nothing)),
            ("require", None) => (SslMode::Require, Some(Verify::Nothing)),
            ("require" | "verify-ca", Some(root)) => (SslMode::Require, Some(Verify::Chain(root))),
            ("verify-full", Some(root)) => (SslMode::Require, Some(Verify::Full(root))),
            ("verify-ca" | "verify-full", None) => {
                return Err(invalid(format!(
                    "sslmode={mode} needs a root certificate (sslrootcert=FILE, PGSSLROOTCERT or ~/.postgresql/root.crt)"
                )));
            }
            (other, _) => return Err(invalid(format!("unknown sslmode {other:?}"))),
        };
        config.ssl_mode(ssl);
        let tls = PgTls::new(verify).map_err(|e| invalid(e.to_string()))?;
        Ok(PgTarget { config, tls, shown })
    }

    /// Connects (blocking; call it off any async runtime's threads).
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        self.config.connect(self.tls.clone())
    }

    /// The settings, for tools and tests.
    pub fn config(&self) -> &postgres::Config {
        &self.config
    }

    /// The database name as the server will see it (the user name when none is given).
    pub fn dbname(&self) -> String {
        match (self.config.get_dbname(), self.config.get_user()) {
            (Some(db), _) | (None, Some(db)) => db.to_string(),
            (None, None) => "(the user's own database)".into(),
        }
    }
}

fn env_port(env: &dyn Fn(&str) -> Option<String>) -> Option<u16> {
    env("PGPORT").and_then(|p| p.parse().ok())
}

fn home(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HOME").map(PathBuf::from)
}

/// libpq's default: the server's Unix socket where Debian or a source build puts it, else
/// TCP on localhost.
fn default_host(config: &mut postgres::Config, port: u16) {
    for dir in ["/var/run/postgresql", "/tmp"] {
        if Path::new(dir).join(format!(".s.PGSQL.{port}")).exists() {
            config.host_path(dir);
            return;
        }
    }
    config.host("localhost");
}

/// Percent-decoding of a query value (invalid escapes kept as written).
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The password of the first line of a libpq password file matching the connection
/// (`host:port:database:user:password`, `*` matching anything, `\` escaping `:` and `\`).
/// A file readable by group or others is ignored, as libpq ignores it.
fn passfile_password(path: &Path, config: &postgres::Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        if meta.is_file() {
            tracing::warn!(file = %path.display(), "password file ignored: it must not be readable by group or others (chmod 0600)");
        }
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config
        .get_user()
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default();
    let db = config
        .get_dbname()
        .map_or_else(|| user.clone(), str::to_string);
    let wanted = [host.as_str(), port.as_str(), db.as_str(), user.as_str()];
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(split_pgpass)
        .find(|fields| {
            fields.len() == 5
                && fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(f, w)| f == "*" || f == w)
        })
        .map(|mut fields| fields.swap_remove(4))
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields
                .last_mut()
                .into_iter()
                .for_each(|f| f.extend(chars.next())),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().into_iter().for_each(|f| f.push(c)),
        }
    }
    fields
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
