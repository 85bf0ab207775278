//! The tweet application's SQLite schema and its `add-tweet` handler (DESIGN §8).
//!
//! `add-tweet` is commutative and first-wins: the first occurrence of a tweet id is stored
//! (`INSERT OR IGNORE`, with its FTS row only when newly inserted); every op, new or repeated,
//! bumps `account_ops`, a deliberately non-idempotent counter that exposes any double apply.

use std::path::Path;

use rusqlite::{Transaction, params};
use serde_json::Value;

use super::columns::TweetColumns;
use crate::realize::{HandlerError, SinkError, SqliteSink};

/// The op name of a collected tweet.
pub const ADD_TWEET: &str = "add-tweet";

/// Tables of the tweet application (the sink adds `meta`, `applied`, `skipped`, `counters`).
pub const TWEETS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tweets (
    id            TEXT PRIMARY KEY,
    text          TEXT NOT NULL,
    created_at    TEXT,
    author_id     TEXT,
    username      TEXT,
    retweet_count INTEGER,
    like_count    INTEGER,
    lang          TEXT,
    raw           TEXT NOT NULL,
    commit_author TEXT
);
CREATE INDEX IF NOT EXISTS tweets_by_username ON tweets (username);
CREATE VIRTUAL TABLE IF NOT EXISTS tweets_fts
    USING fts5 (text, content = 'tweets', content_rowid = 'rowid');
CREATE TABLE IF NOT EXISTS account_ops (author_id TEXT PRIMARY KEY, ops INTEGER NOT NULL);
";

/// A tweet handler as a plain function pointer.
pub type TweetHandler = fn(&Transaction<'_>, &Value) -> Result<(), HandlerError>;

/// The handlers of the tweet application, by op name (the seed's eval-fn map).
pub fn sqlite_handlers() -> Vec<(&'static str, TweetHandler)> {
    vec![(ADD_TWEET, add_tweet as TweetHandler)]
}

/// Opens (or creates) the tweet SQLite sink at `path` with its schema and handlers.
/// `add-tweet` reads its row straight from the params bytes ([`PreparedTweet::of_params`],
/// on a second thread in commits of many tweets) and writes it ([`insert_prepared`]): the
/// effects of [`add_tweet_params`].
pub fn open_sink(path: impl AsRef<Path>) -> Result<SqliteSink, SinkError> {
    let sink = SqliteSink::open(path)?.with_schema(TWEETS_SCHEMA)?;
    add_commit_author(&sink)?;
    Ok(sink.prepared_handler(ADD_TWEET, PreparedTweet::of_params, insert_prepared))
}

/// A tweet's row read from its params on the sink's preparing thread (see
/// [`SqliteSink::prepared_handler`]), owned so it can cross to the writing thread.
#[derive(Debug)]
pub struct PreparedTweet {
    id: String,
    text: String,
    created_at: Option<String>,
    author_id: Option<String>,
    username: Option<String>,
    retweets: Option<i64>,
    likes: Option<i64>,
    lang: Option<String>,
    raw: String,
}

impl PreparedTweet {
    /// The row of the tweet in `params` (as [`TweetColumns::of_params`]).
    pub fn of_params(params: &[u8]) -> Result<PreparedTweet, HandlerError> {
        let c = TweetColumns::of_params(params)?;
        Ok(PreparedTweet {
            id: c.id.to_owned(),
            text: c.text.to_owned(),
            created_at: c.created_at.map(|s| s.into_owned()),
            author_id: c.author_id.map(|s| s.into_owned()),
            username: c.username.map(str::to_owned),
            retweets: c.retweets,
            likes: c.likes,
            lang: c.lang.map(str::to_owned),
            raw: c.raw,
        })
    }
}

/// The `add-tweet` handler's second half: writes a prepared row (the effects of
/// [`add_tweet_params`]).
pub fn insert_prepared(tx: &Transaction<'_>, row: PreparedTweet) -> Result<(), HandlerError> {
    use std::borrow::Cow;
    insert_tweet(
        tx,
        TweetColumns {
            id: &row.id,
            text: &row.text,
            created_at: row.created_at.as_deref().map(Cow::Borrowed),
            author_id: row.author_id.as_deref().map(Cow::Borrowed),
            username: row.username.as_deref(),
            retweets: row.retweets,
            likes: row.likes,
            lang: row.lang.as_deref(),
            raw: row.raw,
        },
    )
}

/// Migrates a sink made before commits were signed: adds the `commit_author` column (NULL
/// for the tweets it already holds).
fn add_commit_author(sink: &SqliteSink) -> Result<(), SinkError> {
    let conn = sink.connection();
    let doing = || format!("adding tweets.commit_author to {}", sink.path().display());
    let has: bool = conn
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('tweets') WHERE name = 'commit_author'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| SinkError::Storage {
            doing: doing(),
            source: Box::new(e),
        })?;
    if !has {
        conn.execute("ALTER TABLE tweets ADD COLUMN commit_author TEXT", [])
            .map_err(|e| SinkError::Storage {
                doing: doing(),
                source: Box::new(e),
            })?;
    }
    Ok(())
}

/// The username of the tweet's author: the attached `author` object's, when its `id` is the
/// tweet's `author_id` (the rule by which cli_smoke credits an account).
pub fn username_of(tweet: &Value) -> Option<&str> {
    let author_id = tweet.get("author_id")?;
    let author = tweet.get("author")?.as_object()?;
    (author.get("id")? == author_id)
        .then(|| author.get("username").and_then(Value::as_str))
        .flatten()
}

/// The `add-tweet` handler over a decoded tweet.
pub fn add_tweet(tx: &Transaction<'_>, tweet: &Value) -> Result<(), HandlerError> {
    insert_tweet(tx, TweetColumns::of_value(tweet)?)
}

/// The `add-tweet` handler over the params bytes, as [`open_sink`] registers it: the same
/// effects as [`add_tweet`] without building a JSON value.
pub fn add_tweet_params(tx: &Transaction<'_>, params: &[u8]) -> Result<(), HandlerError> {
    insert_tweet(tx, TweetColumns::of_params(params)?)
}

fn insert_tweet(tx: &Transaction<'_>, row: TweetColumns<'_>) -> Result<(), HandlerError> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO tweets
             (id, text, created_at, author_id, username, retweet_count, like_count, lang, raw,
              commit_author)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, (SELECT author FROM temp.commit_context))",
        )?
        .execute(params![
            row.id,
            row.text,
            row.created_at,
            row.author_id,
            row.username,
            row.retweets,
            row.likes,
            row.lang,
            row.raw,
        ])?;
    if inserted == 1 {
        tx.prepare_cached("INSERT INTO tweets_fts (rowid, text) VALUES (?1, ?2)")?
            .execute(params![tx.last_insert_rowid(), row.text])?;
    }
    tx.prepare_cached(
        "INSERT INTO account_ops (author_id, ops) VALUES (?1, 1)
         ON CONFLICT (author_id) DO UPDATE SET ops = ops + 1",
    )?
    .execute([row.author_id.as_deref().unwrap_or_default()])?;
    Ok(())
}
