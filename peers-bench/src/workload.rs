//! The tweet workload: the repository's real tweets, repeated with fresh ids.
//!
//! Base tweets are every tweet of `data/tweets/*.jsonl` (files in name order, lines in file
//! order), parsed by the main crate's `tweets_in_line`, so each carries its author object from
//! `includes.users` under `"author"` exactly as the collector stores it. Tweet `i` of the
//! workload is base tweet `i % base_len` with its id replaced by `"{id}-{i}"` both as the key
//! and inside the params (so no two values are byte-identical and a content-addressed store
//! cannot deduplicate them); its value is `encode_params(params)` (MessagePack), the bytes the
//! collector stores for an `add-tweet` transaction.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use replikativ::tweets::{SAMPLE, TweetRecord, encode_params, tweets_in_line};
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
    /// The base tweets from `data/tweets` beside this crate, or the compiled-in sample when that
    /// directory is not there (e.g. the binary was copied elsewhere).
    pub fn load() -> anyhow::Result<(Workload, Source)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/tweets");
        let mut files: Vec<(String, String)> = Vec::new();
        let description = if dir.is_dir() {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect();
            paths.sort();
            for p in &paths {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                files.push((p.display().to_string(), text));
            }
            format!("data/tweets/*.jsonl ({} files)", files.len())
        } else {
            for (name, text) in SAMPLE {
                files.push((name.to_string(), text.to_string()));
            }
            format!("compiled-in sample ({} files)", files.len())
        };
        let mut base = Vec::new();
        for (_, text) in &files {
            for line in text.lines() {
                // Lines without tweets are skipped, as the collector skips them.
                if let Ok(tweets) = tweets_in_line(line.as_bytes()) {
                    base.extend(tweets);
                }
            }
        }
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
