//! Bounded line reading with byte offsets, for sources that checkpoint and resume.
//!
//! Invariants: a line's bytes are never buffered beyond the limit (a longer line is read to
//! its newline and dropped, reported with its number and length); every line carries the byte
//! offset of its start and of the next line, so a checkpoint can name a line exactly; in follow
//! mode a final line without its newline is not consumed but reported as pending, and a later
//! call continues it once the writer has finished it.

use std::io::{self, BufRead};

/// The line limit of DESIGN §8: 16 MiB.
pub const MAX_LINE_BYTES: u64 = 16 * 1024 * 1024;

/// A line longer than the limit; its bytes were skipped unread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line too long ({len} bytes; the limit is {limit})")]
pub struct LineTooLong {
    /// Bytes in the line, without its newline.
    pub len: u64,
    /// The limit in force.
    pub limit: u64,
}

/// One line of the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// 1-based line number.
    pub number: u64,
    /// Byte offset just after the line and its newline: where the next line starts.
    pub next_offset: u64,
    /// The line without its `\n`, or why it was not kept.
    pub bytes: Result<Vec<u8>, LineTooLong>,
}

/// What [`LineReader::next_line`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextLine {
    /// A complete line (newline-terminated, or the last line at the end without follow).
    Line(Line),
    /// Follow mode: the source ends inside a line; no complete line yet. Call again later.
    Pending {
        /// Offset of the unfinished line.
        offset: u64,
        /// Its line number.
        number: u64,
        /// How many of its bytes have arrived so far.
        received: u64,
    },
    /// The source ends on a line boundary.
    End,
}

/// Reads lines from any [`BufRead`], bounded by a limit, tracking offsets and line numbers.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    limit: u64,
    follow: bool,
    /// Offset and number of the line being read.
    offset: u64,
    number: u64,
    /// Bytes of the current line seen so far, and those kept (empty once over the limit).
    len: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    /// A reader at the start of a source: offset 0, line 1.
    pub fn new(inner: R) -> LineReader<R> {
        LineReader::starting_at(inner, 0, 1)
    }

    /// A reader whose `inner` is already positioned at byte `offset`, the start of line
    /// `number` (resume from a checkpoint).
    pub fn starting_at(inner: R, offset: u64, number: u64) -> LineReader<R> {
        LineReader {
            inner,
            limit: MAX_LINE_BYTES,
            follow: false,
            offset,
            number,
            len: 0,
            buf: Vec::new(),
        }
    }

    /// Sets the line limit in bytes (default [`MAX_LINE_BYTES`]).
    pub fn limit(mut self, limit: u64) -> LineReader<R> {
        self.limit = limit;
        self
    }

    /// Follow mode: at the end, an unfinished last line is pending, not a line.
    pub fn follow(mut self, follow: bool) -> LineReader<R> {
        self.follow = follow;
        self
    }

    /// Offset and number of the next line to be returned.
    pub fn position(&self) -> (u64, u64) {
        (self.offset, self.number)
    }

    /// The next line, [`NextLine::Pending`] (follow mode only) or [`NextLine::End`].
    pub fn next_line(&mut self) -> io::Result<NextLine> {
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if self.len == 0 {
                    return Ok(NextLine::End);
                }
                if self.follow {
                    return Ok(NextLine::Pending {
                        offset: self.offset,
                        number: self.number,
                        received: self.len,
                    });
                }
                return Ok(NextLine::Line(self.finish(false)));
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.unwrap_or(available.len());
            let new_len = self.len + take as u64;
            if new_len <= self.limit {
                self.buf.extend_from_slice(&available[..take]);
            } else if !self.buf.is_empty() {
                // Over the limit: drop what was kept and only count from here on.
                self.buf = Vec::new();
            }
            self.len = new_len;
            match newline {
                Some(i) => {
                    self.inner.consume(i + 1);
                    return Ok(NextLine::Line(self.finish(true)));
                }
                None => self.inner.consume(take),
            }
        }
    }

    fn finish(&mut self, newline: bool) -> Line {
        let next_offset = self.offset + self.len + u64::from(newline);
        let bytes = if self.len > self.limit {
            Err(LineTooLong {
                len: self.len,
                limit: self.limit,
            })
        } else {
            Ok(std::mem::take(&mut self.buf))
        };
        let line = Line {
            offset: self.offset,
            number: self.number,
            next_offset,
            bytes,
        };
        self.offset = next_offset;
        self.number += 1;
        self.len = 0;
        self.buf = Vec::new();
        line
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    type Item = io::Result<Line>;

    /// Complete lines until the end; a pending line (follow mode) also ends the iteration.
    fn next(&mut self) -> Option<io::Result<Line>> {
        match self.next_line() {
            Ok(NextLine::Line(line)) => Some(Ok(line)),
            Ok(NextLine::Pending { .. } | NextLine::End) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn lines(data: &[u8], limit: u64) -> Vec<Line> {
        LineReader::new(BufReader::with_capacity(3, Cursor::new(data.to_vec())))
            .limit(limit)
            .collect::<io::Result<Vec<_>>>()
            .expect("read")
    }

    #[test]
    fn lines_carry_offsets_numbers_and_bytes() {
        let got = lines(b"ab\n\ncde", 10);
        let summary: Vec<_> = got
            .iter()
            .map(|l| {
                (
                    l.offset,
                    l.number,
                    l.next_offset,
                    l.bytes.clone().expect("kept"),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, 1, 3, b"ab".to_vec()),
                (3, 2, 4, Vec::new()),
                (4, 3, 7, b"cde".to_vec())
            ]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_and_the_next_one_read() {
        let got = lines(b"12345\n123456\n1", 5);
        assert_eq!(got[0].bytes, Ok(b"12345".to_vec()));
        assert_eq!(got[1].bytes, Err(LineTooLong { len: 6, limit: 5 }));
        assert_eq!((got[1].number, got[1].next_offset), (2, 13));
        assert_eq!(got[2].bytes, Ok(b"1".to_vec()));
    }

    #[test]
    fn follow_mode_leaves_an_unfinished_line_pending_until_it_is_complete() {
        let mut reader = LineReader::new(Cursor::new(b"a\nbc".to_vec())).follow(true);
        assert!(
            matches!(reader.next_line(), Ok(NextLine::Line(l)) if l.bytes == Ok(b"a".to_vec()))
        );
        assert_eq!(
            reader.next_line().expect("read"),
            NextLine::Pending {
                offset: 2,
                number: 2,
                received: 2
            }
        );
        // The writer finishes the line: the reader continues where it stood.
        let rest = reader.inner.get_mut();
        rest.extend_from_slice(b"d\n");
        match reader.next_line().expect("read") {
            NextLine::Line(l) => assert_eq!((l.offset, l.bytes), (2, Ok(b"bcd".to_vec()))),
            other => panic!("expected the finished line, got {other:?}"),
        }
        assert_eq!(reader.next_line().expect("read"), NextLine::End);
    }
}
