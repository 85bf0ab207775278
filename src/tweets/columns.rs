//! The `tweets` row of one `add-tweet` transaction, read either from a decoded JSON value or
//! straight from the params' MessagePack bytes (the realizer's hot path: no JSON value is
//! built, strings are borrowed from the bytes and `raw` is transcoded in one pass).
//!
//! Invariant: for params made by [`encode_params`](super::encode_params) both readings give the
//! same row, `raw` included (byte for byte: MessagePack keeps the value's key order), and bytes
//! that are not a JSON value are refused as bad params, just as
//! [`decode_params`](super::decode_params) refuses them.

use std::borrow::Cow;
use std::io::Write;

use rmpv::ValueRef;
use serde_json::Value;

use crate::realize::HandlerError;
use crate::tweets::DecodeParamsError;

/// The columns of the `tweets` table for one tweet.
#[derive(Clone, Debug, PartialEq)]
pub struct TweetColumns<'a> {
    /// `id` (a string).
    pub id: &'a str,
    /// `text` (a string).
    pub text: &'a str,
    /// `created_at`, a string or a number's digits.
    pub created_at: Option<Cow<'a, str>>,
    /// `author_id`, a string or a number's digits.
    pub author_id: Option<Cow<'a, str>>,
    /// The attached author's `username` when the author's `id` is the `author_id`.
    pub username: Option<&'a str>,
    /// `public_metrics.retweet_count` as an i64.
    pub retweets: Option<i64>,
    /// `public_metrics.like_count` as an i64.
    pub likes: Option<i64>,
    /// `lang` (a string).
    pub lang: Option<&'a str>,
    /// The whole tweet as compact JSON.
    pub raw: String,
}

fn invalid(reason: &str) -> HandlerError {
    HandlerError::Invalid {
        reason: reason.to_string(),
    }
}

fn bad_params(reason: impl Into<String>) -> HandlerError {
    HandlerError::BadParams(DecodeParamsError::from(rmp_serde::decode::Error::Syntax(
        reason.into(),
    )))
}

impl<'a> TweetColumns<'a> {
    /// The row of a decoded tweet; `Invalid` without a string `id` and `text`.
    pub fn of_value(tweet: &'a Value) -> Result<TweetColumns<'a>, HandlerError> {
        let str_of = |key: &str| tweet.get(key).and_then(Value::as_str);
        let text_of = |key: &str| match tweet.get(key)? {
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        };
        let metric = |name: &str| tweet.get("public_metrics")?.get(name)?.as_i64();
        Ok(TweetColumns {
            id: str_of("id").ok_or_else(|| invalid("a tweet needs a string id"))?,
            text: str_of("text").ok_or_else(|| invalid("a tweet needs a string text"))?,
            created_at: text_of("created_at"),
            author_id: text_of("author_id"),
            username: super::username_of(tweet),
            retweets: metric("retweet_count"),
            likes: metric("like_count"),
            lang: str_of("lang"),
            raw: serde_json::to_string(tweet).map_err(|e| invalid(&e.to_string()))?,
        })
    }

    /// The row straight from params bytes; `BadParams` when they are not MessagePack of a JSON
    /// value, `Invalid` when the tweet lacks a string `id` or `text`.
    pub fn of_params(bytes: &'a [u8]) -> Result<TweetColumns<'a>, HandlerError> {
        let mut rest = bytes;
        // rmpv reads the reserved marker 0xc1 as nil; rmp_serde, the decoder of `decode_params`,
        // refuses it. A walk that allocates nothing makes both refuse the same bytes.
        rmp_serde::from_slice::<serde::de::IgnoredAny>(bytes)
            .map_err(|e| HandlerError::BadParams(DecodeParamsError::from(e)))?;
        // Like `decode_params`, bytes after the first value are ignored.
        let tweet =
            rmpv::decode::read_value_ref(&mut rest).map_err(|e| bad_params(e.to_string()))?;
        let mut raw = Vec::with_capacity(bytes.len() + bytes.len() / 4);
        write_json(&tweet, &mut raw)?;
        let raw = String::from_utf8(raw).map_err(|e| bad_params(e.to_string()))?;
        let str_of = |key: &str| get(&tweet, key).and_then(as_str);
        let metric = |name: &str| match get(get(&tweet, "public_metrics")?, name)? {
            ValueRef::Integer(i) => i.as_i64(),
            _ => None,
        };
        let username = get(&tweet, "author_id").and_then(|author_id| {
            let author = get(&tweet, "author")?;
            (get(author, "id")? == author_id)
                .then(|| get(author, "username").and_then(as_str))
                .flatten()
        });
        Ok(TweetColumns {
            id: str_of("id").ok_or_else(|| invalid("a tweet needs a string id"))?,
            text: str_of("text").ok_or_else(|| invalid("a tweet needs a string text"))?,
            created_at: text_of(&tweet, "created_at"),
            author_id: text_of(&tweet, "author_id"),
            username,
            retweets: metric("retweet_count"),
            likes: metric("like_count"),
            lang: str_of("lang"),
            raw,
        })
    }
}

/// The value under `key` of a map (the last one, as a JSON object keeps it).
fn get<'v, 'a>(map: &'v ValueRef<'a>, key: &str) -> Option<&'v ValueRef<'a>> {
    let ValueRef::Map(entries) = map else {
        return None;
    };
    entries
        .iter()
        .rev()
        .find(|(k, _)| as_str(k) == Some(key))
        .map(|(_, v)| v)
}

/// A UTF-8 string borrowed from the params bytes.
fn as_str<'a>(value: &ValueRef<'a>) -> Option<&'a str> {
    match value {
        ValueRef::String(s) => s.into_str(),
        _ => None,
    }
}

fn text_of<'a>(map: &ValueRef<'a>, key: &str) -> Option<Cow<'a, str>> {
    match get(map, key)? {
        ValueRef::String(s) => s.into_str().map(Cow::Borrowed),
        ValueRef::Integer(i) => Some(Cow::Owned(i.to_string())),
        ValueRef::F64(f) => serde_json::Number::from_f64(*f).map(|n| Cow::Owned(n.to_string())),
        ValueRef::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map(|n| Cow::Owned(n.to_string()))
        }
        _ => None,
    }
}

/// Compact JSON of a MessagePack value, as serde_json would write the same value.
fn write_json(value: &ValueRef<'_>, out: &mut Vec<u8>) -> Result<(), HandlerError> {
    let json = |e: serde_json::Error| bad_params(e.to_string());
    match value {
        ValueRef::Nil => out.extend_from_slice(b"null"),
        ValueRef::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        ValueRef::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => write!(out, "{u}").map_err(|e| bad_params(e.to_string()))?,
            (None, Some(s)) => write!(out, "{s}").map_err(|e| bad_params(e.to_string()))?,
            (None, None) => return Err(bad_params("integer out of range")),
        },
        // A JSON value holds no NaN or infinity; serde_json decodes them as null.
        ValueRef::F32(f) => serde_json::to_writer(&mut *out, &f64::from(*f)).map_err(json)?,
        ValueRef::F64(f) => serde_json::to_writer(&mut *out, f).map_err(json)?,
        ValueRef::String(s) => {
            let s = s
                .as_str()
                .ok_or_else(|| bad_params("a string is not UTF-8"))?;
            serde_json::to_writer(&mut *out, s).map_err(json)?;
        }
        ValueRef::Binary(_) | ValueRef::Ext(..) => {
            return Err(bad_params("bytes or an extension are not JSON"));
        }
        ValueRef::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, out)?;
            }
            out.push(b']');
        }
        ValueRef::Map(entries) => {
            out.push(b'{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let key = as_str(key).ok_or_else(|| bad_params("an object key is not a string"))?;
                serde_json::to_writer(&mut *out, key).map_err(json)?;
                out.push(b':');
                write_json(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tweets::{encode_params, sample_tweets};
    use serde_json::json;

    #[test]
    fn both_readings_of_every_sample_tweet_give_the_same_row() {
        for record in sample_tweets() {
            let bytes = encode_params(&record.params);
            let from_value = TweetColumns::of_value(&record.params).expect("value");
            let from_bytes = TweetColumns::of_params(&bytes).expect("bytes");
            assert_eq!(from_bytes, from_value, "tweet {}", record.id);
        }
    }

    #[test]
    fn numbers_floats_and_escapes_are_written_as_serde_json_writes_them() {
        let v = json!({"id":"1","text":"a \"q\" \u{1} é","author_id":17,"created_at":1.5,
                       "n":[-3, 18446744073709551615u64, 0.1, 1e300, null, true, {}],
                       "author":{"id":17,"username":"u"}});
        let bytes = encode_params(&v);
        let row = TweetColumns::of_params(&bytes).expect("row");
        assert_eq!(row, TweetColumns::of_value(&v).expect("value row"));
        assert_eq!(row.username, Some("u"));
        assert_eq!(row.author_id.as_deref(), Some("17"));
    }

    #[test]
    fn bytes_that_are_no_json_value_are_bad_params_and_a_tweet_without_text_is_invalid() {
        for bytes in [
            &[0xc1][..],
            &[0x81, 0x01, 0x02],
            &[0xc4, 0x01, 0x00],
            &[0x92, 0x90],
        ] {
            assert!(
                matches!(
                    TweetColumns::of_params(bytes),
                    Err(HandlerError::BadParams(_))
                ),
                "{bytes:?}"
            );
        }
        let no_text = encode_params(&json!({"id":"1"}));
        assert!(matches!(
            TweetColumns::of_params(&no_text),
            Err(HandlerError::Invalid { .. })
        ));
    }
}
