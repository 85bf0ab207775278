//! The tweet application's SQLite schema and its `add-tweet` handler (DESIGN §8).
//!
//! `add-tweet` is commutative and first-wins: the first occurrence of a tweet id is stored
//! (`INSERT OR IGNORE`, with its FTS row only when newly inserted); every op, new or repeated,
//! bumps `account_ops`, a deliberately non-idempotent counter that exposes any double apply.

use std::path::Path;

use rusqlite::{Transaction, params};
use serde_json::Value;

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
    raw           TEXT NOT NULL
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
pub fn open_sink(path: impl AsRef<Path>) -> Result<SqliteSink, SinkError> {
    let sink = SqliteSink::open(path)?.with_schema(TWEETS_SCHEMA)?;
    Ok(sqlite_handlers()
        .into_iter()
        .fold(sink, |sink, (op, handler)| sink.handler(op, handler)))
}

fn invalid(reason: &str) -> HandlerError {
    HandlerError::Invalid {
        reason: reason.to_string(),
    }
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

/// Text of a scalar field: strings as they are, numbers as their digits.
fn text_field(tweet: &Value, key: &str) -> Option<String> {
    match tweet.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `add-tweet` handler.
pub fn add_tweet(tx: &Transaction<'_>, tweet: &Value) -> Result<(), HandlerError> {
    let id = tweet
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("a tweet needs a string id"))?;
    let text = tweet
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("a tweet needs a string text"))?;
    let author_id = text_field(tweet, "author_id");
    let metric = |name: &str| {
        tweet
            .get("public_metrics")
            .and_then(|m| m.get(name))
            .and_then(Value::as_i64)
    };
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO tweets
             (id, text, created_at, author_id, username, retweet_count, like_count, lang, raw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            id,
            text,
            text_field(tweet, "created_at"),
            author_id,
            username_of(tweet),
            metric("retweet_count"),
            metric("like_count"),
            tweet.get("lang").and_then(Value::as_str),
            tweet.to_string(),
        ])?;
    if inserted == 1 {
        tx.prepare_cached("INSERT INTO tweets_fts (rowid, text) VALUES (?1, ?2)")?
            .execute(params![tx.last_insert_rowid(), text])?;
    }
    tx.prepare_cached(
        "INSERT INTO account_ops (author_id, ops) VALUES (?1, 1)
         ON CONFLICT (author_id) DO UPDATE SET ops = ops + 1",
    )?
    .execute([author_id.unwrap_or_default()])?;
    Ok(())
}
