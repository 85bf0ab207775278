//! Where `analyze` realizes, `query` reads and `realize-skip` records: `--sqlite FILE` or
//! `--postgres URL` (credentials from the URL, the `PG*` variables or `~/.pgpass`).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::UsageError;
use crate::realize::{PgTarget, Sink, SinkError, SqliteSink};
use crate::tweets::{PgTweetDb, TweetDb, TweetQueries, open_pg_sink, open_sink};

/// A sink's database.
#[derive(Clone, Debug)]
pub enum SinkTarget {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (boxed: its settings are large).
    Postgres(Box<PgTarget>),
}

impl std::fmt::Display for SinkTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkTarget::Sqlite(path) => write!(f, "{}", path.display()),
            SinkTarget::Postgres(target) => write!(f, "{target}"),
        }
    }
}

impl SinkTarget {
    /// Exactly one of `--sqlite FILE` and `--postgres URL` (else a usage error).
    pub fn from_flags(
        command: &str,
        sqlite: Option<&Path>,
        postgres: Option<&str>,
    ) -> Result<SinkTarget> {
        match (sqlite, postgres) {
            (Some(path), None) => Ok(SinkTarget::Sqlite(path.to_path_buf())),
            (None, Some(url)) => Ok(SinkTarget::Postgres(Box::new(
                PgTarget::parse(url).map_err(|e| UsageError(e.to_string()))?,
            ))),
            _ => Err(UsageError(format!("{command} needs --sqlite FILE or --postgres URL")).into()),
        }
    }

    /// The name of the realizer writing this target (its supervision id).
    pub fn realizer_name(&self) -> &'static str {
        match self {
            SinkTarget::Sqlite(_) => "sqlite",
            SinkTarget::Postgres(_) => "postgres",
        }
    }

    /// The flag naming this target, for messages that tell the operator what to run.
    pub fn flag(&self) -> String {
        match self {
            SinkTarget::Sqlite(path) => format!("--sqlite {}", path.display()),
            SinkTarget::Postgres(target) => format!("--postgres {target}"),
        }
    }

    /// Opens (or creates) the tweet sink. Blocking: call it off async runtimes.
    pub fn open_sink(&self) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            SinkTarget::Sqlite(path) => Box::new(open_sink(path)?),
            SinkTarget::Postgres(target) => Box::new(open_pg_sink(target)?),
        })
    }

    /// Opens a sink that must exist already (for `realize-skip`).
    pub fn open_existing(&self) -> Result<Box<dyn Sink>, SinkError> {
        Ok(match self {
            SinkTarget::Sqlite(path) => Box::new(SqliteSink::open_existing(path)?),
            SinkTarget::Postgres(target) => {
                Box::new(crate::realize::PostgresSink::open_existing(target)?)
            }
        })
    }

    /// Opens the realized tweets for queries.
    pub fn open_queries(&self) -> Result<Box<dyn TweetQueries>> {
        Ok(match self {
            SinkTarget::Sqlite(path) => Box::new(TweetDb::open(path)?),
            SinkTarget::Postgres(target) => Box::new(PgTweetDb::open(target)?),
        })
    }
}
