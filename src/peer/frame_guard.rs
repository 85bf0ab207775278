//! [`FrameGuard`]: refuses an oversized websocket frame as soon as its header arrives.
//!
//! actix's websocket parser checks a frame's length only once the whole frame is buffered, so
//! a peer declaring a 64 MiB frame would make the server hold 64 MiB before refusing it, per
//! connection. The guard sits between the HTTP payload and the parser, tracks frame
//! boundaries in the raw byte stream (headers only; payload bytes are skipped, not copied),
//! and fails the stream when a header declares more than the limit, so the socket closes
//! after reading a few bytes of it.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use bytes::Bytes;
use futures_util::Stream;

/// Wraps a websocket payload stream and fails it on a frame larger than `max`.
pub struct FrameGuard<S> {
    inner: S,
    max: u64,
    /// Header bytes of the frame being read (at most 14).
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to skip.
    remaining: u64,
    failed: bool,
}

impl<S> FrameGuard<S> {
    /// Guards `inner` with a per-frame limit of `max` payload bytes.
    pub fn new(inner: S, max: usize) -> FrameGuard<S> {
        FrameGuard {
            inner,
            max: max as u64,
            header: [0; 14],
            have: 0,
            remaining: 0,
            failed: false,
        }
    }

    /// Header length once its first two bytes are known: 2, plus 2 or 8 length bytes, plus
    /// 4 mask bytes when masked.
    fn header_len(&self) -> usize {
        let ext = match self.header[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        2 + ext + mask
    }

    fn payload_len(&self) -> u64 {
        match self.header[1] & 0x7f {
            126 => u16::from_be_bytes([self.header[2], self.header[3]]) as u64,
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.header[2..10]);
                u64::from_be_bytes(b)
            }
            n => n as u64,
        }
    }

    /// Follows frame boundaries through `chunk`; the declared length of the frame that is
    /// too large, if one starts here.
    fn scan(&mut self, mut chunk: &[u8]) -> Option<u64> {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let skip = self.remaining.min(chunk.len() as u64);
                self.remaining -= skip;
                chunk = &chunk[skip as usize..];
                continue;
            }
            self.header[self.have] = chunk[0];
            self.have += 1;
            chunk = &chunk[1..];
            if self.have >= 2 && self.have == self.header_len() {
                let len = self.payload_len();
                if len > self.max {
                    return Some(len);
                }
                self.remaining = len;
                self.have = 0;
            }
        }
        None
    }
}

impl<S> Stream for FrameGuard<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.scan(&chunk) {
                None => Poll::Ready(Some(Ok(chunk))),
                Some(len) => {
                    self.failed = true;
                    let max = self.max;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::other(format!(
                        "a websocket frame declares {len} bytes, more than the limit of {max}"
                    ))))))
                }
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u64) -> Vec<u8> {
        let mut h = vec![0x82u8];
        if len < 126 {
            h.push(0x80 | len as u8);
        } else if len <= u16::MAX as u64 {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    #[test]
    fn frames_within_the_limit_pass_even_when_split_anywhere() {
        let mut bytes = Vec::new();
        for len in [0u64, 5, 125, 126, 300, 70_000] {
            bytes.extend(header(len));
            bytes.extend(std::iter::repeat_n(7u8, len as usize));
        }
        for split in [1, 3, 13, 4096] {
            let mut g = FrameGuard::new((), 100_000);
            for chunk in bytes.chunks(split) {
                assert_eq!(g.scan(chunk), None, "split {split}");
            }
            assert_eq!((g.have, g.remaining), (0, 0), "ends on a frame boundary");
        }
    }

    #[test]
    fn a_header_declaring_too_much_is_refused_before_its_payload() {
        let mut g = FrameGuard::new((), 1000);
        assert_eq!(g.scan(&header(10)), None);
        assert_eq!(g.scan(&[0; 10]), None);
        let big = header(64 << 20);
        assert_eq!(g.scan(&big[..5]), None, "not known yet");
        assert_eq!(g.scan(&big[5..]), Some(64 << 20));
        let mut g = FrameGuard::new((), 1000);
        assert_eq!(g.scan(&header(1 << 62)), Some(1 << 62));
    }
}
