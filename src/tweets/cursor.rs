//! Tweets of a source with the exact position after each one, so a collector batch can end
//! inside a page and resume there after a crash (DESIGN §8).
//!
//! A [`SourcePosition`] is (byte offset of a line, its number, how many of its tweets are
//! already committed). After a line's last tweet, or after a skipped line, the position is the
//! next line's start with `tweets_done = 0`, so every position names a line boundary plus a
//! count inside it: resuming from it yields exactly the tweets not yet committed.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::lines::{LineReader, NextLine};
use super::parse::{SkipReason, TweetRecord, tweets_in_line};

/// Where a file source stands: checkpointed atomically with each commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourcePosition {
    /// Byte offset of the line's start.
    pub offset: u64,
    /// 1-based number of that line.
    pub line: u64,
    /// How many of that line's tweets are already committed.
    pub tweets_done: u32,
}

impl SourcePosition {
    /// The start of a source.
    pub const START: SourcePosition = SourcePosition {
        offset: 0,
        line: 1,
        tweets_done: 0,
    };
}

impl Default for SourcePosition {
    fn default() -> SourcePosition {
        SourcePosition::START
    }
}

/// What a [`TweetCursor`] yields.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceEvent {
    /// A tweet, and the position just after it.
    Tweet {
        /// The tweet.
        record: TweetRecord,
        /// Resuming from here yields the tweets after this one.
        after: SourcePosition,
    },
    /// A line that holds no tweet: report `line` and `reason`, count it, go on.
    Skipped {
        /// Its line number.
        line: u64,
        /// Its byte offset.
        offset: u64,
        /// Why.
        reason: SkipReason,
        /// The next line's start.
        after: SourcePosition,
    },
    /// Follow mode: the source ends inside a line; nothing complete to read yet.
    Pending {
        /// The position (unchanged); call again later.
        at: SourcePosition,
    },
}

/// Yields the tweets of a line source from a position on.
#[derive(Debug)]
pub struct TweetCursor<R> {
    lines: LineReader<R>,
    /// Tweets of the current line not yet yielded, with the line's start, number and end.
    queued: VecDeque<TweetRecord>,
    line: (u64, u64, u64),
    done: u32,
    /// Tweets to drop from the first line read (already committed before a restart).
    skip_first: u32,
    position: SourcePosition,
}

impl<R: BufRead> TweetCursor<R> {
    /// A cursor over `reader`, which must already stand at `at.offset`.
    pub fn new(reader: R, at: SourcePosition) -> TweetCursor<R> {
        TweetCursor {
            lines: LineReader::starting_at(reader, at.offset, at.line),
            queued: VecDeque::new(),
            line: (at.offset, at.line, at.offset),
            done: 0,
            skip_first: at.tweets_done,
            position: at,
        }
    }

    /// Follow mode (see [`LineReader::follow`]).
    pub fn follow(mut self, follow: bool) -> TweetCursor<R> {
        self.lines = self.lines.follow(follow);
        self
    }

    /// Sets the line limit (default 16 MiB).
    pub fn limit(mut self, limit: u64) -> TweetCursor<R> {
        self.lines = self.lines.limit(limit);
        self
    }

    /// The position after the last event yielded.
    pub fn position(&self) -> SourcePosition {
        self.position
    }

    /// The next event, or `None` at the end of the source. In follow mode `None` means the
    /// source currently ends on a line boundary and `Pending` that it ends inside a line;
    /// either way a tailer calls again later and the cursor continues where it stood.
    pub fn next_event(&mut self) -> io::Result<Option<SourceEvent>> {
        loop {
            if let Some(record) = self.queued.pop_front() {
                self.done += 1;
                let (offset, line, next_offset) = self.line;
                self.position = if self.queued.is_empty() {
                    SourcePosition {
                        offset: next_offset,
                        line: line + 1,
                        tweets_done: 0,
                    }
                } else {
                    SourcePosition {
                        offset,
                        line,
                        tweets_done: self.done,
                    }
                };
                return Ok(Some(SourceEvent::Tweet {
                    record,
                    after: self.position,
                }));
            }
            let line = match self.lines.next_line()? {
                NextLine::End => return Ok(None),
                NextLine::Pending { .. } => {
                    return Ok(Some(SourceEvent::Pending { at: self.position }));
                }
                NextLine::Line(line) => line,
            };
            let skip = std::mem::take(&mut self.skip_first);
            let after = SourcePosition {
                offset: line.next_offset,
                line: line.number + 1,
                tweets_done: 0,
            };
            let parsed = match line.bytes {
                Ok(bytes) => tweets_in_line(&bytes),
                Err(too_long) => Err(SkipReason::TooLong {
                    len: too_long.len,
                    limit: too_long.limit,
                }),
            };
            match parsed {
                Ok(tweets) => {
                    self.line = (line.offset, line.number, line.next_offset);
                    self.done = skip.min(tweets.len() as u32);
                    self.queued = tweets.into_iter().skip(skip as usize).collect();
                    if self.queued.is_empty() {
                        // Every tweet of this line was committed before: move past it.
                        self.position = after;
                    }
                }
                Err(reason) => {
                    self.position = after;
                    return Ok(Some(SourceEvent::Skipped {
                        line: line.number,
                        offset: line.offset,
                        reason,
                        after,
                    }));
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for TweetCursor<R> {
    type Item = io::Result<SourceEvent>;

    /// Events until the end; a pending line (follow mode) also ends the iteration.
    fn next(&mut self) -> Option<io::Result<SourceEvent>> {
        match self.next_event() {
            Ok(Some(SourceEvent::Pending { .. })) | Ok(None) => None,
            other => other.transpose(),
        }
    }
}

/// Opens `path` and positions a cursor at `at` (seeking to `at.offset`).
pub fn open_file_at(path: &Path, at: SourcePosition) -> io::Result<TweetCursor<BufReader<File>>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(at.offset))?;
    Ok(TweetCursor::new(
        BufReader::with_capacity(1 << 16, file),
        at,
    ))
}
