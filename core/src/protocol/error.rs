//! [`ProtocolError`]: why a frame was refused. Every variant names what was wrong and where.

use crate::id::Id;

use super::message::{ErrorCode, Message};

/// Why a frame is not an acceptable [`super::Message`]. Each is answered with an
/// [`Message::Error`] and a clean close (see [`ProtocolError::reply`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame is larger than the configured maximum (checked before anything is read).
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A text frame arrived; the protocol uses binary frames only.
    #[error("text frame of {len} bytes received; only binary MessagePack frames are allowed")]
    TextFrame {
        /// The text's length in bytes.
        len: usize,
    },
    /// The frame ends inside a value.
    #[error("truncated at byte {at}: {needed} more bytes needed")]
    Truncated {
        /// Offset where the incomplete item starts.
        at: usize,
        /// How many more bytes the item claims.
        needed: usize,
    },
    /// A byte that is not a valid MessagePack marker (0xc1).
    #[error("invalid MessagePack marker 0x{byte:02x} at byte {at}")]
    InvalidMarker {
        /// Offset of the marker.
        at: usize,
        /// The marker byte.
        byte: u8,
    },
    /// Bytes left over after the message.
    #[error("{extra} trailing bytes after the message at byte {at}")]
    TrailingBytes {
        /// Where the message ended.
        at: usize,
        /// How many bytes followed it.
        extra: usize,
    },
    /// An array or map claims more elements than allowed (checked before allocating).
    #[error("{path}: {len} elements exceed the limit of {max} (at byte {at})")]
    TooManyItems {
        /// Where in the message, e.g. `commits.commits`.
        path: String,
        /// Offset of the header.
        at: usize,
        /// The claimed element count.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A string or binary claims more bytes than allowed.
    #[error("{path}: a {len}-byte string or binary exceeds the limit of {max} (at byte {at})")]
    ValueTooLarge {
        /// Where in the message.
        path: String,
        /// Offset of the header.
        at: usize,
        /// The claimed length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Arrays/maps nested deeper than allowed.
    #[error("{path}: nesting deeper than {max} levels (at byte {at})")]
    TooDeep {
        /// Where in the message.
        path: String,
        /// Offset of the offending header.
        at: usize,
        /// The limit.
        max: usize,
    },
    /// The frame is not a one-entry map `{kind: body}`.
    #[error("not a message envelope: {detail}")]
    NotAnEnvelope {
        /// What was found instead.
        detail: String,
    },
    /// A kind name this version does not know.
    #[error("unknown message kind {kind:?}")]
    UnknownKind {
        /// The kind name (truncated to 64 characters).
        kind: String,
    },
    /// The body does not match the kind's schema.
    #[error("malformed {kind} message: {detail}")]
    Schema {
        /// The message kind.
        kind: String,
        /// The decoder's explanation.
        detail: String,
    },
    /// The peer speaks another protocol version.
    #[error("protocol version {theirs} is not supported (this peer speaks {ours})")]
    WrongVersion {
        /// Our [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION).
        ours: u32,
        /// The version in the peer's `Hello`.
        theirs: u32,
    },
    /// Bytes whose hash differs from the id claimed for them.
    #[error("{kind}: bytes claimed as {claimed} hash to {actual}")]
    ForgedId {
        /// The message kind carrying them.
        kind: &'static str,
        /// The id the sender claimed.
        claimed: Id,
        /// The id of the bytes actually received.
        actual: Id,
    },
    /// A received pack that is refused: larger than allowed once decompressed (refused
    /// before, or stopped at the bound while, decompressing), damaged, or holding a value
    /// that does not hash to the id sent for it.
    #[error("packs: {0}")]
    Pack(#[source] crate::pack::PackCheckError),
    /// A `Commits` frame whose signatures do not line up with its commits.
    #[error("commits: {signatures} signatures for {commits} commits (none, or one per commit)")]
    Signatures {
        /// Commits in the frame.
        commits: usize,
        /// Signature entries in the frame.
        signatures: usize,
    },
    /// Encoding a message failed (only for types that cannot be MessagePack-encoded).
    #[error("could not encode a {kind} message")]
    Encode {
        /// The message kind.
        kind: &'static str,
        /// The encoder's error.
        #[source]
        source: rmp_serde::encode::Error,
    },
}

impl ProtocolError {
    /// The [`ErrorCode`] sent to the peer for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TextFrame { .. } => ErrorCode::TextFrame,
            ProtocolError::UnknownKind { .. } => ErrorCode::UnknownKind,
            ProtocolError::WrongVersion { .. } => ErrorCode::WrongVersion,
            ProtocolError::ForgedId { .. } | ProtocolError::Pack(_) => ErrorCode::Verification,
            ProtocolError::Encode { .. } => ErrorCode::Internal,
            _ => ErrorCode::Malformed,
        }
    }

    /// The [`Message::Error`] to send before closing the connection.
    pub fn reply(&self) -> Message {
        Message::Error {
            code: self.code(),
            message: self.to_string(),
        }
    }
}
