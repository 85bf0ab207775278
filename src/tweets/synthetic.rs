//! A deterministic stream of many tweets made from the real compiled-in sample ([`SAMPLE`]),
//! for benchmarks and load tests.
//!
//! The sample's tweets are repeated in their order; the `i`-th synthetic tweet (from 0) is the
//! `i mod len`-th real tweet with its id replaced by `"{real id}-{i}"`. Everything else (text,
//! author, metrics, language) stays as it was, so full-text search and `top` stay realistic.
//! Ids are unique: the number after the last `-` is `i`, and no two tweets share an `i`.
//! Each tweet is a flat object carrying its `author`, as [`tweets_in_line`] reads it back.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::Value;

use super::parse::{TweetRecord, tweets_in_line};
use super::sample::SAMPLE;

/// The real tweets of the compiled-in sample, in file and line order.
pub fn sample_tweets() -> Vec<TweetRecord> {
    SAMPLE
        .iter()
        .flat_map(|(_, contents)| contents.lines())
        .filter_map(|line| tweets_in_line(line.as_bytes()).ok())
        .flatten()
        .collect()
}

/// The first `n` synthetic tweets (see the module doc); the same `n` always gives the same
/// tweets.
pub fn synthetic_tweets(n: usize) -> impl Iterator<Item = TweetRecord> {
    let base = sample_tweets();
    (0..n).filter_map(move |i| {
        // The sample is compiled in and holds tweets; an empty one yields nothing.
        let real = base.get(i.checked_rem(base.len())?)?;
        Some(renumbered(real, i))
    })
}

/// `real` with the id `"{real id}-{i}"`, in the record and in its params.
fn renumbered(real: &TweetRecord, i: usize) -> TweetRecord {
    let id = format!("{}-{i}", real.id);
    let mut params = real.params.clone();
    if let Value::Object(fields) = &mut params {
        fields.insert("id".into(), Value::String(id.clone()));
    }
    TweetRecord { id, params }
}

/// Writes the first `n` synthetic tweets to `path` as JSON lines (one flat tweet with its
/// `author` per line) and returns the bytes written.
pub fn write_synthetic_jsonl(n: usize, path: impl AsRef<Path>) -> io::Result<u64> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut written = 0u64;
    for record in synthetic_tweets(n) {
        let line = serde_json::to_vec(&record.params).map_err(io::Error::other)?;
        out.write_all(&line)?;
        out.write_all(b"\n")?;
        written += line.len() as u64 + 1;
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tweets::{SourceEvent, SourcePosition, TweetCursor};
    use std::collections::HashSet;

    #[test]
    fn synthetic_ids_are_unique_across_several_rounds_of_the_sample() {
        let real = sample_tweets().len();
        assert!(real > 10, "the sample holds {real} tweets");
        let n = real * 3 + 7;
        let ids: HashSet<String> = synthetic_tweets(n).map(|r| r.id).collect();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn synthetic_tweets_keep_the_real_text_and_author_under_a_new_id() {
        let real = sample_tweets();
        let synthetic: Vec<TweetRecord> = synthetic_tweets(real.len() + 1).collect();
        let again = &synthetic[real.len()];
        assert_eq!(again.id, format!("{}-{}", real[0].id, real.len()));
        assert_eq!(again.params["id"], Value::String(again.id.clone()));
        assert_eq!(again.params["text"], real[0].params["text"]);
        assert_eq!(again.params.get("author"), real[0].params.get("author"));
        assert_eq!(
            synthetic_tweets(5).collect::<Vec<_>>(),
            synthetic[..5].to_vec()
        );
    }

    #[test]
    fn written_jsonl_parses_back_to_the_same_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("synthetic.jsonl");
        let n = 250;
        let bytes = write_synthetic_jsonl(n, &path).expect("write");
        let data = std::fs::read(&path).expect("read");
        assert_eq!(bytes, data.len() as u64);
        let back: Vec<TweetRecord> = TweetCursor::new(&data[..], SourcePosition::START)
            .map(|event| match event.expect("read") {
                SourceEvent::Tweet { record, .. } => record,
                other => panic!("every line holds one tweet, got {other:?}"),
            })
            .collect();
        assert_eq!(back, synthetic_tweets(n).collect::<Vec<_>>());
    }
}
