//! Queries over a realized tweet SQLite file (`replikativ query`, DESIGN §8), and the exact
//! JSON shapes they print.
//!
//! The file is opened without create and with `query_only`, plus a busy timeout, so it can be
//! read while a realizer writes it (WAL).
//!
//! Search semantics: a tweet matches a term when the term is one word and that word is one of
//! the words of the tweet's text, as [`words`](super::words) defines them (FTS5's `unicode61`
//! rules: case folded, diacritics removed, split at everything but letters and numbers). FTS5
//! narrows the candidates (the term is passed as a quoted FTS5 string, so no user input is
//! ever FTS5 syntax); [`term_matches`](super::words::term_matches) decides, so words longer than FTS5 indexes are exact too.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::words::{search_word, words};
use crate::realize::sqlite::{BUSY_TIMEOUT, SQLITE_FORMAT};

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The file does not exist.
    #[error("{path}: no such file (realize into it first with `replikativ analyze`)")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a replikativ tweet database.
    #[error("{path} is not a replikativ SQLite file: {reason}")]
    NotReplikativ {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// SQLite failed.
    #[error("{path}: {doing} failed")]
    Sql {
        /// The file.
        path: PathBuf,
        /// The query.
        doing: &'static str,
        /// The database error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database holds no replikativ tweets, or tweets of a newer schema.
    #[error("{target}: {reason}")]
    NoTweets {
        /// The database (its URL without the password).
        target: String,
        /// Why, and what to do.
        reason: String,
    },
    /// PostgreSQL failed.
    #[error("{target}: {doing} failed")]
    Postgres {
        /// The database (its URL without the password).
        target: String,
        /// The query.
        doing: &'static str,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
}

/// The queries of `replikativ query`, over either sink.
pub trait TweetQueries {
    /// Distinct tweets.
    fn count(&mut self) -> Result<u64, QueryError>;
    /// All tweets a one-word search for `term` finds, and the first `limit` of them in the
    /// order they were realized.
    fn search(&mut self, term: &str, limit: usize) -> Result<(u64, Vec<TweetRow>), QueryError>;
    /// The `n` usernames with the most distinct tweets; ties by username (byte order).
    fn top(&mut self, n: usize) -> Result<Vec<(String, u64)>, QueryError>;
    /// Distinct tweets, ops applied and commits applied.
    fn stats(&mut self) -> Result<Stats, QueryError>;
    /// How many `add-tweet` ops were applied for an account (the exactly-once witness).
    fn account_ops(&mut self, author_id: &str) -> Result<u64, QueryError>;
}

impl TweetQueries for TweetDb {
    fn count(&mut self) -> Result<u64, QueryError> {
        TweetDb::count(self)
    }
    fn search(&mut self, term: &str, limit: usize) -> Result<(u64, Vec<TweetRow>), QueryError> {
        TweetDb::search(self, term, limit)
    }
    fn top(&mut self, n: usize) -> Result<Vec<(String, u64)>, QueryError> {
        TweetDb::top(self, n)
    }
    fn stats(&mut self) -> Result<Stats, QueryError> {
        TweetDb::stats(self)
    }
    fn account_ops(&mut self, author_id: &str) -> Result<u64, QueryError> {
        TweetDb::account_ops(self, author_id)
    }
}

/// A tweet as `query search` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TweetRow {
    /// Tweet id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// `created_at`, if present.
    pub created_at: Option<String>,
    /// `author_id`, if present.
    pub author_id: Option<String>,
    /// The author's username, if the record carried it.
    pub username: Option<String>,
    /// `public_metrics.retweet_count`.
    pub retweet_count: Option<i64>,
    /// `public_metrics.like_count`.
    pub like_count: Option<i64>,
    /// `lang`.
    pub lang: Option<String>,
}

/// `query count --json` → `{"count":N}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountJson {
    /// Distinct tweets.
    pub count: u64,
}

/// `query search T --json` → `{"count":total,"tweets":[...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchJson {
    /// All matches.
    pub count: u64,
    /// The first `--limit` of them.
    pub tweets: Vec<TweetRow>,
}

/// One row of `query top`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopEntry {
    /// The account.
    pub username: String,
    /// Its distinct tweets.
    pub tweets: u64,
}

/// `query top N --json` → `{"top":[{"username":..,"tweets":N},...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopJson {
    /// Most active first; ties by username.
    pub top: Vec<TopEntry>,
}

/// `query stats --json` → `{"tweets":N,"ops_applied":N,"commits_applied":N}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Distinct tweets.
    pub tweets: u64,
    /// Transactions applied (every `add-tweet`, repeated ids included).
    pub ops_applied: u64,
    /// Commits applied (operator skips not counted).
    pub commits_applied: u64,
}

/// A read handle on a realized tweet database.
#[derive(Debug)]
pub struct TweetDb {
    conn: Connection,
    path: PathBuf,
}

impl TweetDb {
    /// Opens an existing tweet database, refusing a missing or foreign file by name.
    pub fn open(path: impl AsRef<Path>) -> Result<TweetDb, QueryError> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(QueryError::Missing { path });
        }
        let not_ours = |reason: String| QueryError::NotReplikativ {
            path: path.clone(),
            reason,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(&path, flags).map_err(|e| not_ours(e.to_string()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|()| conn.pragma_update(None, "query_only", true))
            .map_err(|e| not_ours(e.to_string()))?;
        let format: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| not_ours(e.to_string()))?;
        if format.as_deref() != Some(SQLITE_FORMAT) {
            return Err(not_ours(format!(
                "format {format:?}, expected {SQLITE_FORMAT:?}"
            )));
        }
        let has_tweets: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'tweets_fts')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| not_ours(e.to_string()))?;
        if !has_tweets {
            return Err(not_ours("a sink without the tweet tables".into()));
        }
        Ok(TweetDb { conn, path })
    }

    fn sql(&self, doing: &'static str) -> impl FnOnce(rusqlite::Error) -> QueryError + '_ {
        move |source| QueryError::Sql {
            path: self.path.clone(),
            doing,
            source,
        }
    }

    /// Distinct tweets.
    pub fn count(&self) -> Result<u64, QueryError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM tweets", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.sql("counting tweets"))
    }

    /// All tweets matching `term` (see the module docs) and the first `limit` of them, in the
    /// order they were realized. Any input is safe: it never reaches FTS5 as syntax.
    pub fn search(&self, term: &str, limit: usize) -> Result<(u64, Vec<TweetRow>), QueryError> {
        let Some(word) = search_word(term) else {
            // Not a single word, so it equals no word of any text.
            return Ok((0, Vec::new()));
        };
        let quoted = format!("\"{}\"", term.replace('"', "\"\""));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT t.id, t.text, t.created_at, t.author_id, t.username,
                        t.retweet_count, t.like_count, t.lang
                 FROM tweets_fts JOIN tweets t ON t.rowid = tweets_fts.rowid
                 WHERE tweets_fts MATCH ?1 ORDER BY t.rowid",
            )
            .map_err(self.sql("searching"))?;
        let rows = stmt
            .query_map([quoted], |r| {
                Ok(TweetRow {
                    id: r.get(0)?,
                    text: r.get(1)?,
                    created_at: r.get(2)?,
                    author_id: r.get(3)?,
                    username: r.get(4)?,
                    retweet_count: r.get(5)?,
                    like_count: r.get(6)?,
                    lang: r.get(7)?,
                })
            })
            .map_err(self.sql("searching"))?;
        let (mut total, mut first) = (0u64, Vec::new());
        for row in rows {
            let row = row.map_err(self.sql("searching"))?;
            if words(&row.text).any(|w| w == word) {
                total += 1;
                if first.len() < limit {
                    first.push(row);
                }
            }
        }
        Ok((total, first))
    }

    /// The `n` usernames with the most distinct tweets; ties ordered by username.
    pub fn top(&self, n: usize) -> Result<Vec<(String, u64)>, QueryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT username, COUNT(*) AS n FROM tweets WHERE username IS NOT NULL
                 GROUP BY username ORDER BY n DESC, username ASC LIMIT ?1",
            )
            .map_err(self.sql("ranking accounts"))?;
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map([limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(self.sql("ranking accounts"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.sql("ranking accounts"))
    }

    /// Distinct tweets, ops applied and commits applied.
    pub fn stats(&self) -> Result<Stats, QueryError> {
        let one = |sql: &str| -> Result<u64, QueryError> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(self.sql("reading stats"))
        };
        Ok(Stats {
            tweets: one("SELECT COUNT(*) FROM tweets")?,
            ops_applied: one(
                "SELECT COALESCE((SELECT value FROM counters WHERE name = 'ops_applied'), 0)",
            )?,
            commits_applied: one("SELECT COUNT(*) FROM applied
                 WHERE commit_id NOT IN (SELECT commit_id FROM skipped)")?,
        })
    }

    /// How many `add-tweet` ops were applied for an account (the exactly-once witness).
    pub fn account_ops(&self, author_id: &str) -> Result<u64, QueryError> {
        self.conn
            .query_row(
                "SELECT COALESCE((SELECT ops FROM account_ops WHERE author_id = ?1), 0)",
                [author_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.sql("reading account ops"))
    }
}

impl From<Vec<(String, u64)>> for TopJson {
    fn from(rows: Vec<(String, u64)>) -> TopJson {
        TopJson {
            top: rows
                .into_iter()
                .map(|(username, tweets)| TopEntry { username, tweets })
                .collect(),
        }
    }
}
