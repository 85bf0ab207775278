//! A JSON-lines sink: one line per applied op in `FILE`, and a sidecar `FILE.applied` with one
//! line per applied (or skipped) commit recording the length of `FILE` after it.
//!
//! Exactly once, and its limits: a commit's op lines are appended and synced first, then its
//! sidecar line is appended and synced; the sidecar line is the commit point. On open, a
//! sidecar line without its newline is dropped and `FILE` is truncated to the length the last
//! complete sidecar line records, removing op lines of a commit that never reached its commit
//! point, so it is re-applied once. This holds only while this sink is the sole writer of both
//! files. A reader tailing `FILE` may see lines of a commit that is later rolled back by that
//! truncation (no read isolation), and a `FILE` shorter than the sidecar says (truncated or
//! replaced by someone else) is refused rather than guessed at.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::params::decode_params;
use super::sink::{Sink, SinkError, SkippedCommit, TxParams, now_ms};
use crate::id::Id;

/// One sidecar line.
#[derive(Debug, Serialize, Deserialize)]
struct Checkpoint {
    commit: String,
    /// Length of the ops file after this commit.
    end: u64,
    at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
}

/// Appends ops as JSON lines, exactly once while it is the only writer (see module docs).
#[derive(Debug)]
pub struct JsonlSink {
    path: PathBuf,
    sidecar_path: PathBuf,
    out: File,
    sidecar: File,
    sidecar_len: u64,
    len: u64,
    applied: HashSet<Id>,
    skipped: Vec<SkippedCommit>,
}

fn io(path: &Path, doing: &str) -> impl FnOnce(std::io::Error) -> SinkError {
    let path = path.to_path_buf();
    let doing = doing.to_string();
    move |source| SinkError::Io {
        path,
        doing,
        source,
    }
}

impl JsonlSink {
    /// Opens or creates `path` and its sidecar `path.applied`, rolling back an unfinished commit.
    pub fn open(path: impl AsRef<Path>) -> Result<JsonlSink, SinkError> {
        let path = path.as_ref().to_path_buf();
        let mut sidecar_name = path.clone().into_os_string();
        sidecar_name.push(".applied");
        let sidecar_path = PathBuf::from(sidecar_name);
        let open = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(p)
                .map_err(io(p, "opening"))
        };
        let mut sidecar = open(&sidecar_path)?;
        let out = open(&path)?;
        let mut text = Vec::new();
        sidecar
            .read_to_end(&mut text)
            .map_err(io(&sidecar_path, "reading the checkpoints"))?;
        // Only newline-terminated lines count: a torn last line is an unfinished commit point.
        let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let mut applied = HashSet::new();
        let mut skipped = Vec::new();
        let mut end = 0;
        for (n, line) in text[..complete].split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let foreign = |reason: String| SinkError::Foreign {
                path: sidecar_path.clone(),
                reason: format!("line {}: {reason}", n + 1),
            };
            let cp: Checkpoint =
                serde_json::from_slice(line).map_err(|e| foreign(e.to_string()))?;
            let commit: Id = cp.commit.parse().map_err(|e| foreign(format!("{e}")))?;
            applied.insert(commit);
            if let Some(reason) = cp.skipped {
                skipped.push(SkippedCommit {
                    commit,
                    reason,
                    at_ms: cp.at_ms,
                });
            }
            end = cp.end;
        }
        sidecar
            .set_len(complete as u64)
            .map_err(io(&sidecar_path, "dropping a torn checkpoint"))?;
        let actual = out
            .metadata()
            .map_err(io(&path, "reading its length"))?
            .len();
        if actual < end {
            return Err(SinkError::Foreign {
                path,
                reason: format!("{actual} bytes, but its checkpoints record {end}"),
            });
        }
        out.set_len(end)
            .map_err(io(&path, "rolling back an unfinished commit"))?;
        Ok(JsonlSink {
            path,
            sidecar_path,
            out,
            sidecar,
            sidecar_len: complete as u64,
            len: end,
            applied,
            skipped,
        })
    }

    /// The ops file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn checkpoint(&mut self, cp: &Checkpoint) -> Result<(), SinkError> {
        let mut line = serde_json::to_vec(cp).map_err(|e| SinkError::Io {
            path: self.sidecar_path.clone(),
            doing: "encoding a checkpoint".into(),
            source: e.into(),
        })?;
        line.push(b'\n');
        let written = self
            .sidecar
            .write_all(&line)
            .and_then(|()| self.sidecar.sync_data());
        if let Err(e) = written {
            // A torn checkpoint line must not stay in front of the next one.
            let _ = self.sidecar.set_len(self.sidecar_len);
            return Err(io(&self.sidecar_path, "writing a checkpoint")(e));
        }
        self.sidecar_len += line.len() as u64;
        Ok(())
    }
}

impl Sink for JsonlSink {
    fn applied(&mut self) -> Result<HashSet<Id>, SinkError> {
        Ok(self.applied.clone())
    }

    fn apply_commit(&mut self, commit: Id, txs: &[TxParams]) -> Result<(), SinkError> {
        if self.applied.contains(&commit) {
            return Ok(());
        }
        let mut lines = Vec::new();
        for (i, (op, bytes)) in txs.iter().enumerate() {
            let params: Value = decode_params(bytes).map_err(|source| SinkError::BadParams {
                commit,
                tx: i,
                op: op.clone(),
                source,
            })?;
            let line = json!({"commit": commit.to_hex(), "tx": i, "op": op, "params": params});
            lines.extend_from_slice(line.to_string().as_bytes());
            lines.push(b'\n');
        }
        let written = self
            .out
            .write_all(&lines)
            .and_then(|()| self.out.sync_data());
        if let Err(e) = written {
            // Take back a partial append so the file stays at the last commit point.
            let _ = self.out.set_len(self.len);
            return Err(io(&self.path, "appending ops")(e));
        }
        let end = self.len + lines.len() as u64;
        let cp = Checkpoint {
            commit: commit.to_hex(),
            end,
            at_ms: now_ms(),
            skipped: None,
        };
        if let Err(e) = self.checkpoint(&cp) {
            let _ = self.out.set_len(self.len);
            return Err(e);
        }
        self.len = end;
        self.applied.insert(commit);
        Ok(())
    }

    fn record_skip(&mut self, commit: Id, reason: &str) -> Result<(), SinkError> {
        if self.applied.contains(&commit) {
            return Ok(());
        }
        let at_ms = now_ms();
        self.checkpoint(&Checkpoint {
            commit: commit.to_hex(),
            end: self.len,
            at_ms,
            skipped: Some(reason.to_string()),
        })?;
        self.applied.insert(commit);
        self.skipped.push(SkippedCommit {
            commit,
            reason: reason.to_string(),
            at_ms,
        });
        Ok(())
    }

    fn skipped(&mut self) -> Result<Vec<SkippedCommit>, SinkError> {
        Ok(self.skipped.clone())
    }
}
