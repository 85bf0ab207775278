//! The seed's application: collected tweets (DESIGN §8).
//!
//! - [`parse`]: the tweets of one source line ([`tweets_in_line`]) and [`SkipReason`]; a
//!   tweet's params are stored with the realization's codec ([`encode_params`],
//!   [`decode_params`], re-exported from [`crate::realize::params`]).
//! - [`lines`]: bounded line reading with offsets ([`LineReader`], 16 MiB per line).
//! - [`cursor`]: tweets with the [`SourcePosition`] after each, to checkpoint and resume a file.
//! - [`schema`]: the SQLite schema and the `add-tweet` handler ([`open_sink`]).
//! - [`pg_schema`], [`pg_query`]: the same tables, handler and queries on PostgreSQL
//!   ([`open_pg_sink`], [`PgTweetDb`]).
//! - [`columns`]: a tweet's `tweets` row, from a JSON value or straight from params bytes.
//! - [`query`]: `count`, `search`, `top`, `stats` over the realized file ([`TweetDb`]).
//! - [`words`]: what a word is for search, in every sink ([`words()`], [`search_word`]).
//! - [`chart`]: the `top` bar chart as SVG ([`top_chart_svg`]).
//! - [`sample`]: sample data compiled in for `replikativ demo` ([`SAMPLE`]).
//! - [`synthetic`]: a large deterministic stream made from the sample ([`synthetic_tweets`]).
//!
//! ```
//! use replikativ::tweets::{SourcePosition, SourceEvent, TweetCursor};
//!
//! let source = b"{\"data\":[{\"id\":\"1\",\"text\":\"hi\"},{\"id\":\"2\",\"text\":\"yo\"}]}\nnot json\n";
//! let events: Vec<SourceEvent> = TweetCursor::new(&source[..], SourcePosition::START)
//!     .collect::<std::io::Result<_>>()?;
//! assert_eq!(events.len(), 3); // two tweets, one skipped line
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod chart;
pub mod columns;
pub mod cursor;
pub mod lines;
pub mod parse;
pub mod pg_query;
pub mod pg_schema;
pub mod query;
pub mod sample;
pub mod schema;
pub mod synthetic;
pub use replikativ_core::words;

pub use crate::realize::params::{DecodeParamsError, decode_params, encode_params};
pub use chart::{ChartError, top_chart_svg};
pub use columns::TweetColumns;
pub use cursor::{SourceEvent, SourcePosition, TweetCursor, open_file_at};
pub use lines::{Line, LineReader, LineTooLong, MAX_LINE_BYTES, NextLine};
pub use parse::{SkipReason, TweetRecord, tweets_in_line};
pub use pg_query::PgTweetDb;
pub use pg_schema::{PgLoad, open_pg_sink, open_pg_sink_with};
pub use query::{
    CountJson, QueryError, SearchJson, Stats, TopEntry, TopJson, TweetDb, TweetQueries, TweetRow,
};
pub use sample::{SAMPLE, SAMPLE_LICENSE};
pub use schema::{
    ADD_TWEET, PreparedTweet, TWEETS_SCHEMA, TweetHandler, add_tweet, add_tweet_params,
    insert_prepared, open_sink, sqlite_handlers, username_of,
};
pub use synthetic::{sample_tweets, synthetic_tweets, write_synthetic_jsonl};
pub use words::{search_word, term_matches, words};

// The words against SQLite FTS5's own tokenizer: the oracle needs SQLite, which the pure
// core does not have.
#[cfg(test)]
mod words_tests;
