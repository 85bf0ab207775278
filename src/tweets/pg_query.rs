//! `replikativ query --postgres URL`: the answers of [`TweetDb`](super::TweetDb) from a tweet
//! database on PostgreSQL, with the same meaning — a search is for one
//! [word](super::words), `top` breaks ties by username in byte order (`COLLATE "C"`, SQLite's
//! `BINARY`), `stats` counts commits applied without operator skips.
//!
//! The session is read-only (`default_transaction_read_only`), needs only `SELECT`, and
//! answers from one snapshot per query, so it runs beside analyzers writing the database.

use postgres::{Client, IsolationLevel, Row, Transaction};

use super::pg_schema::{TWEETS_PG_MIGRATIONS, pg_text};
use super::query::{QueryError, Stats, TweetQueries, TweetRow};
use super::words::search_word;
use crate::realize::postgres::{PG_FORMAT, PG_SINK_VERSION, PgTarget};

/// A read handle on a tweet database on PostgreSQL.
pub struct PgTweetDb {
    client: Client,
    target: String,
}

impl std::fmt::Debug for PgTweetDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTweetDb")
            .field("target", &self.target)
            .finish()
    }
}

const ROW: &str = "id, text, created_at, author_id, username, retweet_count, like_count, lang";
const MATCHES: &str = "replikativ.word_keys(words) @> ARRAY[hashtextextended($1, 0)]
                       AND $1 = ANY (words)";

fn tweet_row(r: &Row) -> TweetRow {
    TweetRow {
        id: r.get(0),
        text: r.get(1),
        created_at: r.get(2),
        author_id: r.get(3),
        username: r.get(4),
        retweet_count: r.get(5),
        like_count: r.get(6),
        lang: r.get(7),
    }
}

impl PgTweetDb {
    /// Connects, refusing a database without replikativ tweets or with a newer schema.
    pub fn open(target: &PgTarget) -> Result<PgTweetDb, QueryError> {
        let shown = target.to_string();
        let failed = |doing| {
            let shown = shown.clone();
            move |source| QueryError::Postgres {
                target: shown,
                doing,
                source,
            }
        };
        let mut client = target.connect().map_err(failed("connecting"))?;
        client
            .batch_execute("SET default_transaction_read_only = on")
            .map_err(failed("opening a read-only session"))?;
        let row = client
            .query_one(
                "SELECT to_regclass('replikativ.meta') IS NOT NULL
                    AND to_regclass('replikativ.tweets') IS NOT NULL",
                &[],
            )
            .map_err(failed("looking for the tweet tables"))?;
        let no_tweets = |reason: String| QueryError::NoTweets {
            target: shown.clone(),
            reason,
        };
        if !row.get::<_, bool>(0) {
            return Err(no_tweets(format!(
                "database {} holds no replikativ tweets (realize into it first with `replikativ analyze --postgres URL`)",
                target.dbname()
            )));
        }
        let meta = client
            .query("SELECT key, value FROM replikativ.meta", &[])
            .map_err(failed("reading replikativ.meta"))?;
        let get = |k: &str| {
            meta.iter()
                .find(|r| r.get::<_, &str>(0) == k)
                .and_then(|r| r.get::<_, &str>(1).parse::<i64>().ok())
        };
        let format = meta.iter().find(|r| r.get::<_, &str>(0) == "format");
        if format.map(|r| r.get::<_, &str>(1)) != Some(PG_FORMAT) {
            return Err(no_tweets("replikativ.meta names another format".into()));
        }
        let tweets_version = TWEETS_PG_MIGRATIONS.len() as i64;
        match (get("version"), get("schema:tweets")) {
            (Some(sink), Some(tweets)) if sink <= PG_SINK_VERSION && tweets <= tweets_version => {}
            (sink, tweets) => {
                return Err(no_tweets(format!(
                    "its replikativ schema has versions sink {sink:?}, tweets {tweets:?}; this build reads up to {PG_SINK_VERSION} and {tweets_version}: use a newer replikativ"
                )));
            }
        }
        Ok(PgTweetDb {
            client,
            target: shown,
        })
    }

    fn failed(&self, doing: &'static str) -> impl FnOnce(postgres::Error) -> QueryError + use<> {
        let target = self.target.clone();
        move |source| QueryError::Postgres {
            target,
            doing,
            source,
        }
    }

    /// A read-only transaction on one snapshot.
    fn snapshot(&mut self) -> Result<Transaction<'_>, QueryError> {
        let failed = self.failed("starting a read-only transaction");
        self.client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(failed)
    }

    fn one(&mut self, sql: &str, doing: &'static str) -> Result<u64, QueryError> {
        let failed = self.failed(doing);
        let n: i64 = self.client.query_one(sql, &[]).map_err(failed)?.get(0);
        Ok(n as u64)
    }
}

impl TweetQueries for PgTweetDb {
    fn count(&mut self) -> Result<u64, QueryError> {
        self.one("SELECT COUNT(*) FROM replikativ.tweets", "counting tweets")
    }

    fn search(&mut self, term: &str, limit: usize) -> Result<(u64, Vec<TweetRow>), QueryError> {
        let Some(word) = search_word(term) else {
            return Ok((0, Vec::new()));
        };
        let word = pg_text(&word).into_owned();
        let failed = self.failed("searching");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut tx = self.snapshot()?;
        let total: i64 = match tx.query_one(
            &format!("SELECT COUNT(*) FROM replikativ.tweets WHERE {MATCHES}"),
            &[&word],
        ) {
            Ok(row) => row.get(0),
            Err(e) => return Err(failed(e)),
        };
        let rows = match tx.query(
            &format!("SELECT {ROW} FROM replikativ.tweets WHERE {MATCHES} ORDER BY seq LIMIT $2"),
            &[&word, &limit],
        ) {
            Ok(rows) => rows,
            Err(e) => return Err(failed(e)),
        };
        Ok((total as u64, rows.iter().map(tweet_row).collect()))
    }

    fn top(&mut self, n: usize) -> Result<Vec<(String, u64)>, QueryError> {
        let failed = self.failed("ranking accounts");
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                "SELECT username, COUNT(*) AS n FROM replikativ.tweets WHERE username IS NOT NULL
                 GROUP BY username ORDER BY n DESC, username COLLATE \"C\" ASC LIMIT $1",
                &[&limit],
            )
            .map_err(failed)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    fn stats(&mut self) -> Result<Stats, QueryError> {
        let failed = self.failed("reading stats");
        let row = self
            .client
            .query_one(
                "SELECT (SELECT COUNT(*) FROM replikativ.tweets),
                        COALESCE((SELECT value FROM replikativ.counters
                                  WHERE name = 'ops_applied'), 0),
                        (SELECT COUNT(*) FROM replikativ.applied a WHERE NOT EXISTS
                            (SELECT 1 FROM replikativ.skipped s WHERE s.commit_id = a.commit_id))",
                &[],
            )
            .map_err(failed)?;
        Ok(Stats {
            tweets: row.get::<_, i64>(0) as u64,
            ops_applied: row.get::<_, i64>(1) as u64,
            commits_applied: row.get::<_, i64>(2) as u64,
        })
    }

    fn account_ops(&mut self, author_id: &str) -> Result<u64, QueryError> {
        let failed = self.failed("reading account ops");
        let row = self
            .client
            .query_one(
                "SELECT COALESCE((SELECT ops FROM replikativ.account_ops WHERE author_id = $1), 0)",
                &[&pg_text(author_id)],
            )
            .map_err(failed)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
