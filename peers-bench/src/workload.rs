//! The tweet workload: the repository's real tweets, repeated with fresh ids.
//!
//! Base tweets are the main crate's compiled-in sample (`tweets::sample_tweets`: the files of
//! `tweets::SAMPLE` in order, lines in file order), parsed by `tweets_in_line`, so each carries
//! its author object from `includes.users` under `"author"` exactly as the collector stores it;
//! `benches/pipeline.rs` repeats the same tweets the same way. Tweet `i` of the
//! workload is base tweet `i % base_len` with its id replaced by `"{id}-{i}"` both as the key
//! and inside the params (so no two values are byte-identical and a content-addressed store
//! cannot deduplicate them); its value is `encode_params(params)` (MessagePack), the bytes the
//! collector stores for an `add-tweet` transaction.

use anyhow::bail;
use replikativ::tweets::{SAMPLE, TweetRecord, encode_params, sample_tweets};
use serde_json::Value;

/// One tweet ready to insert: its key and the stored value bytes.
pub struct Tweet {
    /// The fresh id, used as the map key.
    pub id: String,
    /// MessagePack of the params with the fresh id inside.
    pub value: Vec<u8>,
}

impl Tweet {
    /// Bytes of content this tweet carries: key plus value.
    pub fn payload_len(&self) -> u64 {
        (self.id.len() + self.value.len()) as u64
    }
}

/// Where the base tweets came from.
pub struct Source {
    /// A description for the report, e.g. `"data/tweets (9 files)"`.
    pub description: String,
}

/// A deterministic, endless sequence of fresh tweets over a fixed base set.
pub struct Workload {
    base: Vec<TweetRecord>,
    next: u64,
}

impl Workload {
    /// The base tweets: the main crate's compiled-in sample (`tweets::sample_tweets`), the
    /// tweets `benches/pipeline.rs` repeats, so both compare the same workload.
    pub fn load() -> anyhow::Result<(Workload, Source)> {
        let base = sample_tweets();
        let description = format!(
            "the compiled-in sample of the main crate ({} files, the tweets benches/pipeline.rs uses)",
            SAMPLE.len()
        );
        if base.is_empty() {
            bail!("no tweets found in {description}");
        }
        Ok((Workload { base, next: 0 }, Source { description }))
    }

    /// Number of distinct base tweets.
    pub fn base_len(&self) -> usize {
        self.base.len()
    }

    /// Mean encoded value bytes of the base tweets (ids unchanged).
    pub fn base_mean_value_len(&self) -> f64 {
        let total: usize = self
            .base
            .iter()
            .map(|t| encode_params(&t.params).len())
            .sum();
        total as f64 / self.base.len() as f64
    }

    /// The next `count` tweets of the sequence.
    pub fn batch(&mut self, count: usize) -> Vec<Tweet> {
        (0..count).map(|_| self.next_tweet()).collect()
    }

    fn next_tweet(&mut self) -> Tweet {
        let i = self.next;
        self.next += 1;
        let record = &self.base[(i % self.base.len() as u64) as usize];
        let id = format!("{}-{i}", record.id);
        let mut params = record.params.clone();
        if let Value::Object(map) = &mut params {
            map.insert("id".into(), Value::String(id.clone()));
        }
        Tweet {
            value: encode_params(&params),
            id,
        }
    }
}
