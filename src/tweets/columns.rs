//! The `tweets` row of one `add-tweet` transaction, read either from a decoded JSON value or
//! straight from the params' MessagePack bytes (the realizer's hot path). From bytes it is one
//! pass of rmp-serde, the decoder of [`decode_params`](super::decode_params): the pass writes
//! `raw` as compact JSON and keeps only the fields the row needs, strings borrowed from the
//! bytes; no JSON value is built.
//!
//! Invariant: for params made by [`encode_params`](super::encode_params) both readings give the
//! same row, `raw` included (byte for byte: MessagePack keeps the value's key order), and
//! bytes are refused as bad params exactly when `decode_params` refuses them.

mod pass;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use rmpv::ValueRef;
use serde_json::Value;

use self::pass::{Keep, value_of};
use crate::realize::HandlerError;
use crate::realize::params::DecodeParamsError;

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

    /// The row straight from params bytes, in one pass; `BadParams` when they are not
    /// MessagePack of a JSON value, `Invalid` when the tweet lacks a string `id` or `text`.
    pub fn of_params(bytes: &'a [u8]) -> Result<TweetColumns<'a>, HandlerError> {
        let (tweet, raw) = pass::read(bytes, Keep::Fields(TWEET))
            .map_err(|e| HandlerError::BadParams(DecodeParamsError::from(e)))?;
        let str_of = |name: &str| value_of(&tweet, name).and_then(as_str);
        let metric = |name: &str| match value_of(tweet.get("public_metrics")?, name)? {
            ValueRef::Integer(i) => i.as_i64(),
            _ => None,
        };
        let username = value_of(&tweet, "author_id").and_then(|author_id| {
            let author = tweet.get("author")?;
            (value_of(author, "id")? == author_id)
                .then(|| value_of(author, "username").and_then(as_str))
                .flatten()
        });
        Ok(TweetColumns {
            id: str_of("id").ok_or_else(|| invalid("a tweet needs a string id"))?,
            text: str_of("text").ok_or_else(|| invalid("a tweet needs a string text"))?,
            created_at: value_of(&tweet, "created_at").and_then(text_of),
            author_id: value_of(&tweet, "author_id").and_then(text_of),
            username,
            retweets: metric("retweet_count"),
            likes: metric("like_count"),
            lang: str_of("lang"),
            raw,
        })
    }
}

/// The fields of a tweet the row reads.
const TWEET: &[(&str, Keep)] = &[
    ("id", Keep::Scalar),
    ("text", Keep::Scalar),
    ("created_at", Keep::Scalar),
    ("author_id", Keep::Whole),
    ("lang", Keep::Scalar),
    ("public_metrics", Keep::Fields(METRICS)),
    ("author", Keep::Fields(AUTHOR)),
];
const METRICS: &[(&str, Keep)] = &[
    ("retweet_count", Keep::Scalar),
    ("like_count", Keep::Scalar),
];
const AUTHOR: &[(&str, Keep)] = &[("id", Keep::Whole), ("username", Keep::Scalar)];

/// A UTF-8 string borrowed from the params bytes.
fn as_str<'a>(value: &ValueRef<'a>) -> Option<&'a str> {
    match value {
        ValueRef::String(s) => s.into_str(),
        _ => None,
    }
}

/// A string, or a number's digits as serde_json writes them.
fn text_of<'a>(value: &ValueRef<'a>) -> Option<Cow<'a, str>> {
    match value {
        ValueRef::String(s) => s.into_str().map(Cow::Borrowed),
        ValueRef::Integer(i) => Some(Cow::Owned(i.to_string())),
        ValueRef::F64(f) => serde_json::Number::from_f64(*f).map(|n| Cow::Owned(n.to_string())),
        ValueRef::F32(f) => {
            serde_json::Number::from_f64(f64::from(*f)).map(|n| Cow::Owned(n.to_string()))
        }
        _ => None,
    }
}
