//! The tweets of the browser replica and its search index, with the sinks' meaning: a tweet
//! is the params of an `add-tweet` transaction (MessagePack of the tweet's JSON object, with a
//! string `id` and `text`); the first occurrence of an id counts and repeats do not (the
//! sinks' `INSERT OR IGNORE`); a one-word search counts the tweets having that word by
//! [`replikativ_core::words`], the rule both sinks follow, so the page and
//! `replikativ query search` agree.

use std::collections::{HashMap, HashSet};

use replikativ_core::words::{distinct_words, search_word};
use rmpv::Value;
use serde::Serialize;

/// The op name of a collected tweet (the tweet application's, DESIGN §8).
pub const ADD_TWEET: &str = "add-tweet";

/// The op name of a note of the embedding example (`examples/embed.rs`): params
/// `{"author":..,"text":..}`, shown as a tweet whose id is the params' id (so the page can
/// be mounted there too; equal notes count once here, once per op in its SQLite table).
pub const ADD_NOTE: &str = "add-note";

/// The deepest nesting of params accepted, as in the node's realizer.
const MAX_DEPTH: usize = 128;

/// Why params are not a tweet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TweetError {
    /// Not MessagePack (or nested deeper than the realizer accepts).
    #[error("params are not MessagePack: {0}")]
    NotMessagePack(String),
    /// MessagePack, but not a tweet with a string `id` and `text`.
    #[error("a tweet needs a string {0}")]
    Missing(&'static str),
}

/// What the page shows of one tweet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tweet {
    /// The tweet's id.
    pub id: String,
    /// Its text.
    pub text: String,
    /// `created_at`, when given (a string, or a number's digits).
    pub created_at: Option<String>,
    /// The attached author's `username`, when the author's `id` is the tweet's `author_id`.
    pub username: Option<String>,
}

fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

/// A string, or a number's digits as the sinks store them (`serde_json`'s rendering, so a
/// float `created_at` of `1.0` reads "1.0" here as in `query`, not Rust's "1").
fn text_of(v: &Value) -> Option<String> {
    let float = |f: f64| serde_json::Number::from_f64(f).map(|n| n.to_string());
    match v {
        Value::String(s) => s.as_str().map(str::to_owned),
        Value::Integer(i) => Some(i.to_string()),
        Value::F64(f) => float(*f),
        Value::F32(f) => float(f64::from(*f)),
        _ => None,
    }
}

impl Tweet {
    /// The note in `params` (id `params_id`), as a tweet by its author.
    pub fn of_note(params: &[u8], params_id: &str) -> Result<Tweet, TweetError> {
        let value = rmpv::decode::read_value_with_max_depth(&mut &params[..], MAX_DEPTH)
            .map_err(|e| TweetError::NotMessagePack(e.to_string()))?;
        let text = field(&value, "text")
            .and_then(Value::as_str)
            .ok_or(TweetError::Missing("text"))?;
        Ok(Tweet {
            id: params_id.to_owned(),
            text: text.to_owned(),
            created_at: None,
            username: field(&value, "author")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// The tweet in `params`.
    pub fn of_params(params: &[u8]) -> Result<Tweet, TweetError> {
        let value = rmpv::decode::read_value_with_max_depth(&mut &params[..], MAX_DEPTH)
            .map_err(|e| TweetError::NotMessagePack(e.to_string()))?;
        let string = |name: &'static str| {
            field(&value, name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(TweetError::Missing(name))
        };
        let username = field(&value, "author_id").and_then(|author_id| {
            let author = field(&value, "author")?;
            (field(author, "id")? == author_id)
                .then(|| field(author, "username").and_then(Value::as_str))
                .flatten()
                .map(str::to_owned)
        });
        Ok(Tweet {
            id: string("id")?,
            text: string("text")?,
            created_at: field(&value, "created_at").and_then(text_of),
            username,
        })
    }
}

/// The tweets held, in the order they were applied, and a word index over their texts.
#[derive(Debug, Default)]
pub struct Tweets {
    list: Vec<Tweet>,
    ids: HashSet<String>,
    index: HashMap<String, Vec<u32>>,
    invalid: u64,
}

/// A search's answer: how many tweets match, and the first of them.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Found<'a> {
    /// Tweets having the word.
    pub count: usize,
    /// The first matches, in the order they were applied.
    pub tweets: Vec<&'a Tweet>,
}

impl Tweets {
    /// Adds the tweet in `params` unless its id is held (first wins). Params that are not a
    /// tweet are counted in [`Tweets::invalid`] and otherwise ignored.
    pub fn add_params(&mut self, params: &[u8]) {
        match Tweet::of_params(params) {
            Ok(tweet) => self.add(tweet),
            Err(_) => self.invalid += 1,
        }
    }

    /// Adds the note in `params` (see [`ADD_NOTE`]); like [`Tweets::add_params`].
    pub fn add_note(&mut self, params: &[u8], params_id: &str) {
        match Tweet::of_note(params, params_id) {
            Ok(tweet) => self.add(tweet),
            Err(_) => self.invalid += 1,
        }
    }

    /// Adds `tweet` unless its id is held (first wins).
    pub fn add(&mut self, tweet: Tweet) {
        if !self.ids.insert(tweet.id.clone()) {
            return;
        }
        let at = u32::try_from(self.list.len()).unwrap_or(u32::MAX);
        for word in distinct_words(&tweet.text) {
            self.index.entry(word).or_default().push(at);
        }
        self.list.push(tweet);
    }

    /// Distinct tweets held.
    pub fn count(&self) -> usize {
        self.list.len()
    }

    /// `add-tweet` params that were not a tweet.
    pub fn invalid(&self) -> u64 {
        self.invalid
    }

    /// The last `n` tweets applied, newest first.
    pub fn newest(&self, n: usize) -> Vec<&Tweet> {
        self.list.iter().rev().take(n).collect()
    }

    /// The tweets having the word `term` (none when `term` is not exactly one word), and the
    /// first `limit` of them.
    pub fn search(&self, term: &str, limit: usize) -> Found<'_> {
        let Some(hits) = search_word(term).and_then(|w| self.index.get(&w)) else {
            return Found {
                count: 0,
                tweets: Vec::new(),
            };
        };
        Found {
            count: hits.len(),
            tweets: hits
                .iter()
                .take(limit)
                .filter_map(|&i| self.list.get(i as usize))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Vec<u8> {
        let value: serde_json::Value = serde_json::from_str(json).expect("json");
        rmp_serde::to_vec(&value).expect("msgpack")
    }

    #[test]
    fn a_tweet_is_read_with_the_sinks_username_rule() {
        let t = Tweet::of_params(&params(
            r#"{"id":"1","text":"Hi","created_at":"2020","author_id":"7",
                "author":{"id":"7","username":"ann"}}"#,
        ))
        .expect("tweet");
        assert_eq!(t.username.as_deref(), Some("ann"));
        assert_eq!(t.created_at.as_deref(), Some("2020"));
        let other = Tweet::of_params(&params(
            r#"{"id":"2","text":"x","author_id":"7","author":{"id":"8","username":"bob"}}"#,
        ))
        .expect("tweet");
        assert_eq!(other.username, None, "author of another id is not credited");
    }

    /// `created_at` as the sinks store it: a string as is, a number as JSON writes it (the
    /// oracle is `serde_json`'s own rendering of the parsed source, what the realizer keeps).
    #[test]
    fn created_at_numbers_read_as_the_sinks_write_them() {
        for created in ["1.0", "1587000000", "1.5e300", "-0.25", "\"2020-04-16\""] {
            let json = format!(r#"{{"id":"1","text":"x","created_at":{created}}}"#);
            let source: serde_json::Value = serde_json::from_str(&json).expect("json");
            let expected = match &source["created_at"] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let t = Tweet::of_params(&params(&json)).expect("tweet");
            assert_eq!(
                t.created_at.as_deref(),
                Some(expected.as_str()),
                "{created}"
            );
        }
        // A 32-bit float (not made by the collector, but MessagePack allows it).
        let tweet = Value::Map(vec![
            (Value::from("id"), Value::from("1")),
            (Value::from("text"), Value::from("x")),
            (Value::from("created_at"), Value::F32(2.5)),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &tweet).expect("msgpack");
        let t = Tweet::of_params(&bytes).expect("tweet");
        assert_eq!(t.created_at.as_deref(), Some("2.5"));
    }

    #[test]
    fn params_without_id_or_text_or_not_msgpack_are_not_tweets() {
        assert_eq!(
            Tweet::of_params(&params(r#"{"text":"x"}"#)),
            Err(TweetError::Missing("id"))
        );
        assert_eq!(
            Tweet::of_params(&params(r#"{"id":1,"text":"x"}"#)),
            Err(TweetError::Missing("id"))
        );
        assert!(matches!(
            Tweet::of_params(&[0x92, 0x01]),
            Err(TweetError::NotMessagePack(_))
        ));
        assert!(
            Tweet::of_params(&[0xc1]).is_err(),
            "a reserved byte is no tweet"
        );
        let mut deep = vec![0x91u8; 200];
        deep.push(0xc0);
        assert!(matches!(
            Tweet::of_params(&deep),
            Err(TweetError::NotMessagePack(_))
        ));
    }

    #[test]
    fn the_first_occurrence_wins_and_search_counts_tweets_by_word() {
        let mut tweets = Tweets::default();
        tweets.add_params(&params(r#"{"id":"1","text":"Café at https://t.co/AbC"}"#));
        tweets.add_params(&params(r#"{"id":"1","text":"a repeat, other text"}"#));
        tweets.add_params(&params(r#"{"id":"2","text":"cafe cafe CAFE"}"#));
        tweets.add_params(&params(r#"{"text":"no id"}"#));
        assert_eq!((tweets.count(), tweets.invalid()), (2, 1));
        assert_eq!(tweets.search("CAFÉ", 10).count, 2);
        assert_eq!(tweets.search("abc", 10).count, 1);
        assert_eq!(tweets.search("repeat", 10).count, 0);
        assert_eq!(tweets.search("e-mail", 10).count, 0, "two words");
        let found = tweets.search("cafe", 1);
        assert_eq!((found.count, found.tweets.len()), (2, 1));
        assert_eq!(found.tweets[0].id, "1");
        assert_eq!(tweets.newest(1)[0].id, "2");
    }

    #[test]
    fn a_note_of_the_embedding_example_shows_as_a_tweet_by_its_author() {
        let mut tweets = Tweets::default();
        tweets.add_note(&params(r#"{"author":"ada","text":"hello there"}"#), "ab12");
        tweets.add_note(&params(r#"{"author":"ada"}"#), "cd34");
        assert_eq!((tweets.count(), tweets.invalid()), (1, 1));
        let note = tweets.newest(1)[0];
        assert_eq!(
            (note.id.as_str(), note.username.as_deref()),
            ("ab12", Some("ada"))
        );
        assert_eq!(tweets.search("hello", 5).count, 1);
    }
}
