//! The tweet application on PostgreSQL: its tables (version 1) and the `add-tweet` handler,
//! with the same effects as the SQLite one ([`super::schema`]).
//!
//! `tweets` holds the same columns plus `seq` (realization order) and `words`: the tweet's
//! distinct [`words`](super::words), the one definition both sinks search by. The GIN index is
//! over 64-bit hashes of the words (`replikativ.word_keys`), not the words themselves, so no
//! word is too long to index; a search checks the words exactly (`word = ANY (words)`).
//!
//! A run of `add-tweet`s is applied in bulk: rows are read from the params bytes, repeats
//! inside the run and tweets already stored are dropped (first wins), the rest go in with one
//! binary `COPY` ([`PgLoad::Copy`], the default; [`PgLoad::Insert`] writes row by row, for
//! comparison). `account_ops`, the non-idempotent exactly-once witness, gains one per op,
//! repeats included. Postgres text cannot hold U+0000: stored strings carry U+FFFD in its
//! place (a separator too, so the words are the same); `raw` is JSON and escapes it.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, Statement, Transaction};

use super::columns::TweetColumns;
use super::schema::ADD_TWEET;
use super::words::distinct_words;
use crate::realize::SinkError;
use crate::realize::postgres::{CommitContext, PgTarget, PostgresSink, RunError, pg};

/// Version 1 of the tweet tables in the schema `replikativ`.
pub const TWEETS_PG_V1: &str = "
CREATE FUNCTION replikativ.word_keys(words text[]) RETURNS bigint[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT COALESCE(array_agg(DISTINCT hashtextextended(w, 0)), '{}')
          FROM unnest(words) AS w $$;
CREATE TABLE replikativ.tweets (
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    id            text PRIMARY KEY,
    text          text NOT NULL,
    created_at    text,
    author_id     text,
    username      text,
    retweet_count bigint,
    like_count    bigint,
    lang          text,
    raw           text NOT NULL,
    commit_author text,
    words         text[] NOT NULL
);
CREATE INDEX tweets_by_seq ON replikativ.tweets (seq);
CREATE INDEX tweets_by_username ON replikativ.tweets (username);
CREATE INDEX tweets_by_word ON replikativ.tweets USING gin (replikativ.word_keys(words));
CREATE TABLE replikativ.account_ops (author_id text PRIMARY KEY, ops bigint NOT NULL);
";

/// The tweet tables' migrations, oldest first.
pub const TWEETS_PG_MIGRATIONS: &[&str] = &[TWEETS_PG_V1];

/// How new tweets are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgLoad {
    /// One binary `COPY` per run of `add-tweet`s (faster; see BENCHMARKS).
    Copy,
    /// One `INSERT … ON CONFLICT DO NOTHING` per tweet.
    Insert,
}

/// The columns `COPY` and `INSERT` write, in order.
const COLUMNS: &str = "id, text, created_at, author_id, username, retweet_count, like_count, \
                       lang, raw, commit_author, words";
const COLUMN_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT_ARRAY,
];

struct Statements {
    existing: Statement,
    insert: Statement,
    account_ops: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Statements, postgres::Error> {
        Ok(Statements {
            existing: client.prepare("SELECT id FROM replikativ.tweets WHERE id = ANY ($1)")?,
            insert: client.prepare(&format!(
                "INSERT INTO replikativ.tweets ({COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (id) DO NOTHING"
            ))?,
            // Sorted authors: concurrent sinks lock counter rows in one order (no deadlock).
            account_ops: client.prepare(
                "INSERT INTO replikativ.account_ops (author_id, ops)
                 SELECT * FROM unnest($1::text[], $2::bigint[])
                 ON CONFLICT (author_id) DO UPDATE SET ops = account_ops.ops + excluded.ops",
            )?,
        })
    }
}

/// Opens (or creates) the tweet sink in the database `target`, writing with `COPY`.
pub fn open_pg_sink(target: &PgTarget) -> Result<PostgresSink, SinkError> {
    open_pg_sink_with(target, PgLoad::Copy)
}

/// Like [`open_pg_sink`], writing new tweets as `load` says.
pub fn open_pg_sink_with(target: &PgTarget, load: PgLoad) -> Result<PostgresSink, SinkError> {
    let mut sink = PostgresSink::open(target)?.with_schema("tweets", TWEETS_PG_MIGRATIONS)?;
    let statements = Statements::prepare(sink.client())
        .map_err(pg(format!("preparing the tweet statements on {target}")))?;
    Ok(sink.handler(ADD_TWEET, move |tx, context, params| {
        add_tweets(tx, &statements, load, context, params)
    }))
}

/// `s` as Postgres text can hold it (U+0000 becomes U+FFFD).
pub fn pg_text(s: &str) -> Cow<'_, str> {
    match s.contains('\0') {
        true => Cow::Owned(s.replace('\0', "\u{FFFD}")),
        false => Cow::Borrowed(s),
    }
}

/// One row as written.
struct Row<'a> {
    id: Cow<'a, str>,
    columns: TweetColumns<'a>,
}

fn add_tweets(
    tx: &mut Transaction<'_>,
    statements: &Statements,
    load: PgLoad,
    context: &CommitContext<'_>,
    params: &[&[u8]],
) -> Result<(), RunError> {
    let mut per_author: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen = HashSet::new();
    let mut rows = Vec::with_capacity(params.len());
    for (index, bytes) in params.iter().enumerate() {
        let columns = TweetColumns::of_params(bytes).map_err(|error| RunError { index, error })?;
        let author = pg_text(columns.author_id.as_deref().unwrap_or_default()).into_owned();
        *per_author.entry(author).or_default() += 1;
        let id = pg_text(columns.id);
        if seen.insert(id.clone()) {
            rows.push(Row { id, columns });
        }
    }
    if load == PgLoad::Copy && !rows.is_empty() {
        let ids: Vec<&str> = rows.iter().map(|r| &*r.id).collect();
        let stored: HashSet<String> = tx
            .query(&statements.existing, &[&ids])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        rows.retain(|r| !stored.contains(&*r.id));
    }
    let author = context.author.map(pg_text);
    match load {
        PgLoad::Copy if !rows.is_empty() => {
            let copy = tx.copy_in(&format!(
                "COPY replikativ.tweets ({COLUMNS}) FROM STDIN (FORMAT binary)"
            ))?;
            let mut writer = BinaryCopyInWriter::new(copy, &COLUMN_TYPES);
            for row in &rows {
                let values = Values::of(row);
                writer.write(&values.refs(&author))?;
            }
            writer.finish()?;
        }
        PgLoad::Copy => {}
        PgLoad::Insert => {
            for row in &rows {
                let values = Values::of(row);
                tx.execute(&statements.insert, &values.refs(&author))?;
            }
        }
    }
    let (authors, counts): (Vec<String>, Vec<i64>) = per_author.into_iter().unzip();
    tx.execute(&statements.account_ops, &[&authors, &counts])?;
    Ok(())
}

/// The column values of one row, owned where Postgres needs a different string.
struct Values<'r> {
    row: &'r Row<'r>,
    text: Cow<'r, str>,
    created_at: Option<Cow<'r, str>>,
    author_id: Option<Cow<'r, str>>,
    username: Option<Cow<'r, str>>,
    lang: Option<Cow<'r, str>>,
    words: Vec<String>,
}

impl<'r> Values<'r> {
    fn of(row: &'r Row<'r>) -> Values<'r> {
        let c = &row.columns;
        Values {
            row,
            text: pg_text(c.text),
            created_at: c.created_at.as_deref().map(pg_text),
            author_id: c.author_id.as_deref().map(pg_text),
            username: c.username.map(pg_text),
            lang: c.lang.map(pg_text),
            words: distinct_words(c.text),
        }
    }

    fn refs<'s>(
        &'s self,
        author: &'s Option<Cow<'s, str>>,
    ) -> [&'s (dyn postgres::types::ToSql + Sync); 11] {
        let c = &self.row.columns;
        [
            &self.row.id,
            &self.text,
            &self.created_at,
            &self.author_id,
            &self.username,
            &c.retweets,
            &c.likes,
            &self.lang,
            &c.raw,
            author,
            &self.words,
        ]
    }
}
