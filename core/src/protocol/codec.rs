//! [`Codec`]: one [`Message`] per binary websocket frame, with hard [`Limits`].
//!
//! Decoding runs in four steps, each refusing with a typed [`ProtocolError`]:
//! 1. the frame's length against `max_frame` (before reading a byte);
//! 2. a structure walk over the MessagePack markers (lengths, nesting, truncation, a known
//!    kind) without allocating for contents;
//! 3. the typed decode with `rmp-serde`;
//! 4. semantic checks: a `Hello` with another protocol version, every [`Blob`](super::Blob)
//!    hashed against its claimed id, and every pack decoded within its bound and each of its
//!    values hashed against its id, once: [`Codec::receive`] hands the content on as
//!    [`Verified`](crate::id::Verified) values that nobody hashes again.

use super::error::ProtocolError;
use super::message::{Message, PROTOCOL_VERSION};
use super::received::Received;
use super::walk::walk;

/// Hard limits on what a peer may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame in bytes (default 16 MiB).
    pub max_frame: usize,
    /// Most elements in any one array or map (default 100 000).
    pub max_items: usize,
    /// Deepest nesting of arrays and maps, the envelope included (default 8; messages need 4).
    pub max_depth: usize,
    /// Largest string or binary, e.g. one value's bytes (default 8 MiB).
    pub max_value: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame: 16 << 20,
            max_items: 100_000,
            max_depth: 8,
            max_value: 8 << 20,
        }
    }
}

/// A websocket data frame as received.
#[derive(Clone, Copy, Debug)]
pub enum Frame<'a> {
    /// A binary frame: one MessagePack message.
    Binary(&'a [u8]),
    /// A text frame: always refused.
    Text(&'a str),
}

/// Encodes and decodes messages under [`Limits`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Codec {
    /// The limits applied to both directions.
    pub limits: Limits,
}

impl Codec {
    /// A codec with these limits.
    pub fn new(limits: Limits) -> Codec {
        Codec { limits }
    }

    /// Encodes `msg` as one frame; refuses a frame over `max_frame` so we never send what a
    /// peer with the same limits would refuse.
    pub fn encode(&self, msg: &Message) -> Result<Vec<u8>, ProtocolError> {
        let bytes = rmp_serde::to_vec(msg).map_err(|source| ProtocolError::Encode {
            kind: msg.kind(),
            source,
        })?;
        if bytes.len() > self.limits.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len: bytes.len(),
                max: self.limits.max_frame,
            });
        }
        Ok(bytes)
    }

    /// Decodes one received websocket frame.
    pub fn decode_frame(&self, frame: Frame<'_>) -> Result<Message, ProtocolError> {
        match frame {
            Frame::Binary(bytes) => self.decode(bytes),
            Frame::Text(text) => Err(ProtocolError::TextFrame { len: text.len() }),
        }
    }

    /// Decodes one binary frame, every content blob hashed once and checked against its id.
    /// A driver uses [`receive`](Codec::receive) instead, which keeps that proof.
    pub fn decode(&self, bytes: &[u8]) -> Result<Message, ProtocolError> {
        let msg = self.parse(bytes)?;
        if let Message::Commits {
            commits,
            signatures,
            ..
        } = &msg
            && !signatures.is_empty()
            && signatures.len() != commits.len()
        {
            return Err(ProtocolError::Signatures {
                commits: commits.len(),
                signatures: signatures.len(),
            });
        }
        if let Message::Packs { packs, .. } = &msg {
            for p in packs {
                check_pack(p.clone())?;
            }
        }
        if let Message::Values { values: blobs, .. } | Message::Commits { commits: blobs, .. } =
            &msg
        {
            for blob in blobs {
                if let Some(actual) = blob.forged() {
                    return Err(ProtocolError::ForgedId {
                        kind: msg.kind(),
                        claimed: blob.id,
                        actual,
                    });
                }
            }
        }
        Ok(msg)
    }

    /// Decodes one received binary frame, its content blobs hashed once into
    /// [`Verified`](crate::id::Verified) values that nobody hashes again.
    pub fn receive(&self, bytes: &[u8]) -> Result<Received, ProtocolError> {
        Received::check(self.parse(bytes)?)
    }

    /// Steps 1–3 and the version check: everything but the hashing.
    fn parse(&self, bytes: &[u8]) -> Result<Message, ProtocolError> {
        if bytes.len() > self.limits.max_frame {
            return Err(ProtocolError::FrameTooLarge {
                len: bytes.len(),
                max: self.limits.max_frame,
            });
        }
        let kind = walk(bytes, &self.limits)?;
        // A `Hello` of another version may have other fields: its version is read first, so
        // the refusal names both versions rather than a schema mismatch.
        if kind == "hello"
            && let Some(theirs) = hello_version(bytes)
            && theirs != PROTOCOL_VERSION
        {
            return Err(ProtocolError::WrongVersion {
                ours: PROTOCOL_VERSION,
                theirs,
            });
        }
        rmp_serde::from_slice(bytes).map_err(|e| ProtocolError::Schema {
            kind: kind.to_string(),
            detail: e.to_string(),
        })
    }
}

/// Decodes a received pack within [`MAX_PACK_BYTES`](crate::pack::MAX_PACK_BYTES) (refused
/// before decompressing when its header declares more; decompression stops at the declared
/// size) and hashes each value once against its id.
pub(crate) fn check_pack(
    p: super::message::WirePack,
) -> Result<crate::pack::VerifiedPack, ProtocolError> {
    crate::pack::VerifiedPack::check(p.bytes.0, p.ids, crate::pack::MAX_PACK_BYTES)
        .map_err(ProtocolError::Pack)
}

/// The version field of a walked `{"hello": [version, ...]}` frame, whatever follows it.
fn hello_version(bytes: &[u8]) -> Option<u32> {
    let value = rmpv::decode::read_value(&mut &bytes[..]).ok()?;
    let (_, body) = value.as_map()?.first()?;
    let version = body.as_array()?.first()?.as_u64()?;
    Some(u32::try_from(version).unwrap_or(u32::MAX))
}

/// [`Codec::encode`] with default limits.
pub fn encode(msg: &Message) -> Result<Vec<u8>, ProtocolError> {
    Codec::default().encode(msg)
}

/// [`Codec::decode`] with default limits.
pub fn decode(bytes: &[u8]) -> Result<Message, ProtocolError> {
    Codec::default().decode(bytes)
}
