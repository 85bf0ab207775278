//! Tweets out of one source line (DESIGN §8).
//!
//! A line is a Twitter API v2 page `{"data":[...],"includes":{"users":[...]}}`, a streaming
//! line `{"data":{...},"includes":{...}}`, or a flat tweet object. A **tweet** is an object
//! with a string `id` and a string `text`; `includes.tweets` are context and never collected.
//! Each tweet keeps its own object whole and gets its author's user object attached under
//! `"author"` (from `includes.users` by `author_id`, or a flat record's own `author`).
//!
//! The rule mirrors `tweets_in`/`usernames` of `acceptance/cli_smoke.py` exactly: users are
//! looked up among `includes.users` entries that carry both `id` and `username` (a later entry
//! wins), then the line's top-level `author` object.

use serde_json::{Map, Value};

/// One collected tweet: its id and the params of its `add-tweet` transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct TweetRecord {
    /// The tweet's `id`.
    pub id: String,
    /// The tweet object with its author attached under `"author"` (when known).
    pub params: Value,
}

/// Why a line yields no tweet. Skipping is not a failure: callers report the line number and
/// this reason, count it and go on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// Nothing but whitespace.
    #[error("empty line")]
    Empty,
    /// The bytes are not UTF-8.
    #[error("not UTF-8 (invalid byte at offset {valid_up_to} of the line)")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// UTF-8 but not JSON.
    #[error("not JSON: {message}")]
    NotJson {
        /// serde_json's description, with column.
        message: String,
    },
    /// JSON, but no object with a string `id` and a string `text` where tweets are taken from.
    #[error("JSON holding no tweet ({found})")]
    NoTweet {
        /// What the line held instead, e.g. `"a page of 2 objects without string id and text"`.
        found: String,
    },
    /// Longer than the line limit; skipped to its newline unread.
    #[error("line too long ({len} bytes, the limit is {limit})")]
    TooLong {
        /// Bytes in the line, without its newline.
        len: u64,
        /// The limit in force.
        limit: u64,
    },
}

/// The tweets of one line, or why it holds none.
pub fn tweets_in_line(bytes: &[u8]) -> Result<Vec<TweetRecord>, SkipReason> {
    // A UTF-8 byte order mark (first line of some exported files) is not content.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| SkipReason::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    if text.trim().is_empty() {
        return Err(SkipReason::Empty);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| SkipReason::NotJson {
        message: e.to_string(),
    })?;
    let Value::Object(line) = value else {
        return Err(SkipReason::NoTweet {
            found: format!("a JSON {}", kind(&value)),
        });
    };
    let users = users_of(&line);
    // Where tweets are taken from: a page's array, a streaming line's object, else the line.
    let (candidates, shape): (Vec<&Value>, &str) = match line.get("data") {
        Some(Value::Array(items)) => (items.iter().collect(), "a page"),
        Some(item @ Value::Object(_)) => (vec![item], "a streaming line"),
        _ => (Vec::new(), "a flat object"),
    };
    let out: Vec<TweetRecord> = if shape == "a flat object" {
        tweet_of(&line, &users).into_iter().collect()
    } else {
        candidates
            .iter()
            .filter_map(|item| item.as_object().and_then(|t| tweet_of(t, &users)))
            .collect()
    };
    if out.is_empty() {
        let found = match shape {
            "a page" if candidates.is_empty() => "an empty page".to_string(),
            "a page" => format!(
                "a page of {} items without string id and text",
                candidates.len()
            ),
            other => format!("{other} without string id and text"),
        };
        return Err(SkipReason::NoTweet { found });
    }
    Ok(out)
}

/// The line's users by id, exactly as cli_smoke's `usernames` builds them (last wins).
fn users_of(line: &Map<String, Value>) -> Vec<(&Value, &Map<String, Value>)> {
    let mut users: Vec<(&Value, &Map<String, Value>)> = Vec::new();
    let listed = line
        .get("includes")
        .and_then(|i| i.get("users"))
        .and_then(Value::as_array);
    let top = line.get("author").into_iter();
    for user in listed.into_iter().flatten().chain(top) {
        if let Value::Object(u) = user
            && let (Some(id), true) = (u.get("id"), u.contains_key("username"))
        {
            users.retain(|(known, _)| *known != id);
            users.push((id, u));
        }
    }
    users
}

/// A tweet record from a candidate object, or `None` when it lacks string `id`/`text`.
fn tweet_of(
    tweet: &Map<String, Value>,
    users: &[(&Value, &Map<String, Value>)],
) -> Option<TweetRecord> {
    let id = tweet.get("id")?.as_str()?.to_string();
    tweet.get("text")?.as_str()?;
    let mut params = tweet.clone();
    if let Some(author_id) = tweet.get("author_id")
        && let Some((_, user)) = users.iter().find(|(id, _)| *id == author_id)
    {
        params.insert("author".into(), Value::Object((*user).clone()));
    }
    Some(TweetRecord {
        id,
        params: Value::Object(params),
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn page_tweets_get_their_author_not_the_page() {
        let line = br#"{"data":[{"id":"1","text":"a","author_id":"u"},{"id":"2","text":"b","author_id":"x"}],
            "includes":{"users":[{"id":"u","username":"alice"}],"tweets":[{"id":"9","text":"ctx"}]}}"#;
        let got = tweets_in_line(
            &line
                .iter()
                .copied()
                .filter(|b| *b != b'\n')
                .collect::<Vec<_>>(),
        )
        .expect("tweets");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].params["author"],
            json!({"id":"u","username":"alice"})
        );
        assert!(got[0].params.get("includes").is_none());
        assert!(got[1].params.get("author").is_none());
    }

    #[test]
    fn streaming_and_flat_lines_yield_one_tweet() {
        let s = tweets_in_line(br#"{"data":{"id":"1","text":"t","author_id":"u"},"includes":{"users":[{"id":"u","username":"bob"}]}}"#)
            .expect("streaming");
        assert_eq!(s[0].params["author"]["username"], "bob");
        let f = tweets_in_line(
            br#"{"id":"5","text":"t","author_id":"u","author":{"id":"u","username":"c"}}"#,
        )
        .expect("flat");
        assert_eq!(f[0].id, "5");
        assert_eq!(f[0].params["author"]["username"], "c");
    }

    #[test]
    fn lines_without_tweets_name_their_reason() {
        assert_eq!(tweets_in_line(b"  \r"), Err(SkipReason::Empty));
        assert!(matches!(
            tweets_in_line(b"not json"),
            Err(SkipReason::NotJson { .. })
        ));
        assert!(matches!(
            tweets_in_line(b"\xff{}"),
            Err(SkipReason::NotUtf8 { valid_up_to: 0 })
        ));
        assert!(matches!(
            tweets_in_line(br#"{"data":[{"id":"1","username":"no text"}]}"#),
            Err(SkipReason::NoTweet { .. })
        ));
        assert!(matches!(
            tweets_in_line(b"[1,2]"),
            Err(SkipReason::NoTweet { .. })
        ));
        assert!(matches!(
            tweets_in_line(br#"{"id":1,"text":"numeric id"}"#),
            Err(SkipReason::NoTweet { .. })
        ));
        assert!(matches!(
            tweets_in_line(br#"{"meta":{"result_count":0}}"#),
            Err(SkipReason::NoTweet { .. })
        ));
    }
}
