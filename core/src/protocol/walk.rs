//! Structure pre-validation: walks a MessagePack frame's markers without allocating for its
//! contents, so absurd lengths, deep nesting and truncation are refused before `rmp-serde`
//! builds anything.
//!
//! Invariant after a successful walk: the frame is exactly one envelope `{kind: body}` with a
//! known kind, every array/map has at most `max_items` elements and fits in the remaining
//! bytes, every string/binary has at most `max_value` bytes and fits, nesting is at most
//! `max_depth`, and there are no trailing bytes. Work is O(frame length).

use super::codec::Limits;
use super::error::ProtocolError;
use super::message::KINDS;

/// Field names of each kind's body, for error paths.
fn fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "hello" => &["version", "key", "nonce"],
        "proof" => &["signature"],
        "subscribe" | "subscribed" => &["crdts"],
        "heads" => &["crdt", "heads"],
        "have" => &["crdt", "sample"],
        "known" => &["crdt", "ids"],
        "values" => &["crdt", "values"],
        "packs" => &["crdt", "packs"],
        "commits" => &["crdt", "commits", "signatures"],
        "error" => &["code", "message"],
        _ => &[],
    }
}

/// What one MessagePack header announces.
enum Item {
    /// A fixed-size scalar of this many bytes in total (header included).
    Scalar(usize),
    /// An array or map header of `header` bytes with `elements` items (2 per map entry).
    Container { header: usize, elements: u64 },
    /// A string, binary or extension: header bytes then `len` payload bytes.
    Blob { header: usize, len: u64 },
}

struct Level {
    remaining: u64,
    index: u64,
}

/// Walks `buf` as one message envelope; returns the kind name.
pub(crate) fn walk<'a>(buf: &'a [u8], limits: &Limits) -> Result<&'a str, ProtocolError> {
    let mut w = Walker {
        buf,
        pos: 0,
        limits,
        kind: "",
        stack: Vec::new(),
    };
    let kind = w.envelope()?;
    w.kind = kind;
    w.body()?;
    if w.pos != buf.len() {
        return Err(ProtocolError::TrailingBytes {
            at: w.pos,
            extra: buf.len() - w.pos,
        });
    }
    Ok(kind)
}

struct Walker<'a, 'l> {
    buf: &'a [u8],
    pos: usize,
    limits: &'l Limits,
    kind: &'a str,
    stack: Vec<Level>,
}

impl<'a> Walker<'a, '_> {
    fn byte(&self, at: usize) -> Result<u8, ProtocolError> {
        self.buf
            .get(at)
            .copied()
            .ok_or(ProtocolError::Truncated { at, needed: 1 })
    }

    /// Big-endian unsigned of `n` bytes at `at`.
    fn uint(&self, at: usize, n: usize) -> Result<u64, ProtocolError> {
        let end = at.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(ProtocolError::Truncated {
                at,
                needed: at + n - self.buf.len(),
            });
        };
        Ok(self.buf[at..end]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn header(&self, at: usize) -> Result<Item, ProtocolError> {
        let m = self.byte(at)?;
        Ok(match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Item::Scalar(1),
            0x80..=0x8f => Item::Container {
                header: 1,
                elements: 2 * u64::from(m & 0x0f),
            },
            0x90..=0x9f => Item::Container {
                header: 1,
                elements: u64::from(m & 0x0f),
            },
            0xa0..=0xbf => Item::Blob {
                header: 1,
                len: u64::from(m & 0x1f),
            },
            0xc1 => return Err(ProtocolError::InvalidMarker { at, byte: m }),
            0xc4 | 0xd9 => Item::Blob {
                header: 2,
                len: self.uint(at + 1, 1)?,
            },
            0xc5 | 0xda => Item::Blob {
                header: 3,
                len: self.uint(at + 1, 2)?,
            },
            0xc6 | 0xdb => Item::Blob {
                header: 5,
                len: self.uint(at + 1, 4)?,
            },
            // ext: length, then a type byte, then the payload.
            0xc7 => Item::Blob {
                header: 3,
                len: self.uint(at + 1, 1)?,
            },
            0xc8 => Item::Blob {
                header: 4,
                len: self.uint(at + 1, 2)?,
            },
            0xc9 => Item::Blob {
                header: 6,
                len: self.uint(at + 1, 4)?,
            },
            0xca => Item::Scalar(5),
            0xcb => Item::Scalar(9),
            0xcc | 0xd0 => Item::Scalar(2),
            0xcd | 0xd1 => Item::Scalar(3),
            0xce | 0xd2 => Item::Scalar(5),
            0xcf | 0xd3 => Item::Scalar(9),
            0xd4 => Item::Scalar(3),
            0xd5 => Item::Scalar(4),
            0xd6 => Item::Scalar(6),
            0xd7 => Item::Scalar(10),
            0xd8 => Item::Scalar(18),
            0xdc => Item::Container {
                header: 3,
                elements: self.uint(at + 1, 2)?,
            },
            0xdd => Item::Container {
                header: 5,
                elements: self.uint(at + 1, 4)?,
            },
            0xde => Item::Container {
                header: 3,
                elements: 2 * self.uint(at + 1, 2)?,
            },
            0xdf => Item::Container {
                header: 5,
                elements: 2 * self.uint(at + 1, 4)?,
            },
        })
    }

    fn remaining(&self, from: usize) -> u64 {
        self.buf.len().saturating_sub(from) as u64
    }

    /// Reads `{kind: ...}` up to the body; returns the kind.
    fn envelope(&mut self) -> Result<&'a str, ProtocolError> {
        match self.header(0)? {
            Item::Container {
                header,
                elements: 2,
            } if self.byte(0)? & 0xf0 == 0x80 || self.byte(0)? >= 0xde => self.pos = header,
            _ => {
                return Err(ProtocolError::NotAnEnvelope {
                    detail: format!(
                        "expected a one-entry map, found marker 0x{:02x}",
                        self.byte(0)?
                    ),
                });
            }
        }
        let Item::Blob { header, len } = self.header(self.pos)? else {
            return Err(ProtocolError::NotAnEnvelope {
                detail: "the kind is not a string".into(),
            });
        };
        let marker = self.byte(self.pos)?;
        if !(0xa0..=0xbf).contains(&marker) && !(0xd9..=0xdb).contains(&marker) {
            return Err(ProtocolError::NotAnEnvelope {
                detail: format!("the kind has marker 0x{marker:02x}, not a string"),
            });
        }
        let start = self.pos + header;
        if len > self.remaining(start) {
            return Err(ProtocolError::Truncated {
                at: self.pos,
                needed: (len - self.remaining(start)) as usize,
            });
        }
        let end = start + len as usize;
        let raw = &self.buf[start..end];
        self.pos = end;
        let known = KINDS.iter().find(|k| k.as_bytes() == raw).copied();
        known.ok_or_else(|| ProtocolError::UnknownKind {
            kind: String::from_utf8_lossy(&raw[..raw.len().min(64)]).into_owned(),
        })
    }

    fn path(&self) -> String {
        let mut out = self.kind.to_string();
        for (depth, level) in self.stack.iter().enumerate() {
            let i = level.index.saturating_sub(1);
            match fields(self.kind).get(i as usize) {
                Some(name) if depth == 0 => {
                    out.push('.');
                    out.push_str(name);
                }
                _ => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// Walks the body and everything nested in it.
    fn body(&mut self) -> Result<(), ProtocolError> {
        self.item()?;
        while let Some(top) = self.stack.last_mut() {
            if top.remaining == 0 {
                self.stack.pop();
                continue;
            }
            top.remaining -= 1;
            top.index += 1;
            self.item()?;
        }
        Ok(())
    }

    /// Consumes one header (and a blob's payload); pushes containers.
    fn item(&mut self) -> Result<(), ProtocolError> {
        let at = self.pos;
        match self.header(at)? {
            Item::Scalar(n) => {
                if n as u64 > self.remaining(at) {
                    return Err(ProtocolError::Truncated {
                        at,
                        needed: n - self.buf.len().saturating_sub(at),
                    });
                }
                self.pos += n;
            }
            Item::Blob { header, len } => {
                if len > self.limits.max_value as u64 {
                    return Err(ProtocolError::ValueTooLarge {
                        path: self.path(),
                        at,
                        len,
                        max: self.limits.max_value,
                    });
                }
                // The header must fit too: an ext's type byte follows its length, unread so far.
                let total = header as u64 + len;
                if total > self.remaining(at) {
                    return Err(ProtocolError::Truncated {
                        at,
                        needed: (total - self.remaining(at)) as usize,
                    });
                }
                self.pos = at + header + len as usize;
            }
            Item::Container { header, elements } => {
                let count = if self.byte(at)? & 0xf0 == 0x80 || self.byte(at)? >= 0xde {
                    elements / 2
                } else {
                    elements
                };
                if count > self.limits.max_items as u64 {
                    return Err(ProtocolError::TooManyItems {
                        path: self.path(),
                        at,
                        len: count,
                        max: self.limits.max_items,
                    });
                }
                // The envelope map is level one, so the body sits at depth two.
                if self.stack.len() + 2 > self.limits.max_depth {
                    return Err(ProtocolError::TooDeep {
                        path: self.path(),
                        at,
                        max: self.limits.max_depth,
                    });
                }
                // Every element takes at least one byte.
                let start = at + header;
                if elements > self.remaining(start) {
                    return Err(ProtocolError::Truncated {
                        at,
                        needed: (elements - self.remaining(start)) as usize,
                    });
                }
                self.pos = start;
                if elements > 0 {
                    self.stack.push(Level {
                        remaining: elements,
                        index: 0,
                    });
                }
            }
        }
        Ok(())
    }
}
