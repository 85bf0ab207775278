//! The wire messages: one [`Message`] per binary websocket frame.
//!
//! Encoding is MessagePack via `rmp-serde` in its compact form: an enum value is a one-entry map
//! `{kind: body}` whose key is the snake_case kind name and whose body is the variant's fields as
//! an array in declaration order (`{"heads": [[user, uuid], [id, ...]]}`). Ids are 32-byte `bin`,
//! UUIDs 16-byte `bin`, payload bytes `bin`. The kind names are part of the protocol: renaming
//! or reordering fields is a protocol version change.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::crdt::commit::CrdtKey;
use crate::id::Id;

/// The protocol version spoken by this crate; a peer announcing another one is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// Every kind name this version understands, in the order of [`Message`]'s variants.
pub const KINDS: &[&str] = &[
    "hello",
    "subscribe",
    "subscribed",
    "heads",
    "have",
    "known",
    "values",
    "commits",
    "error",
    "ping",
    "pong",
];

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// First message of each side: protocol version and persistent peer id.
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// The sender's persistent peer id.
        peer_id: Uuid,
    },
    /// Asks the other side to share these CRDTs (creating empty replicas it lacks).
    Subscribe {
        /// The CRDTs to share.
        crdts: Vec<CrdtKey>,
    },
    /// Acknowledges a [`Message::Subscribe`]: these CRDTs are now shared on this connection.
    Subscribed {
        /// The CRDTs now shared.
        crdts: Vec<CrdtKey>,
    },
    /// The sender's current heads of one CRDT (it holds them and all their ancestors).
    Heads {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The sender's heads.
        heads: Vec<Id>,
    },
    /// A sample of the sender's ancestry; the receiver answers with [`Message::Known`].
    Have {
        /// Which CRDT.
        crdt: CrdtKey,
        /// Commit ids from the sender's graph.
        sample: Vec<Id>,
    },
    /// The subset of a [`Message::Have`] sample that the sender holds.
    Known {
        /// Which CRDT.
        crdt: CrdtKey,
        /// Ids the sender holds (with all their ancestors).
        ids: Vec<Id>,
    },
    /// Values (transaction params) needed by the commits that follow.
    Values {
        /// Which CRDT the following commits belong to.
        crdt: CrdtKey,
        /// Each value's claimed id and its author's bytes.
        values: Vec<Blob>,
    },
    /// Encoded commits, parents before children.
    Commits {
        /// Which CRDT.
        crdt: CrdtKey,
        /// Each commit's claimed id and its author's bytes.
        commits: Vec<Blob>,
    },
    /// A refusal; the sender closes the connection after it.
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
    /// Liveness probe; answered with [`Message::Pong`] carrying the same nonce.
    Ping(u64),
    /// Answer to [`Message::Ping`].
    Pong(u64),
}

impl Message {
    /// The kind name used on the wire, e.g. `"heads"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Subscribe { .. } => "subscribe",
            Message::Subscribed { .. } => "subscribed",
            Message::Heads { .. } => "heads",
            Message::Have { .. } => "have",
            Message::Known { .. } => "known",
            Message::Values { .. } => "values",
            Message::Commits { .. } => "commits",
            Message::Error { .. } => "error",
            Message::Ping(_) => "ping",
            Message::Pong(_) => "pong",
        }
    }

    /// The CRDTs this message is about: the one named by `Heads`, `Have`, `Known`, `Values`
    /// and `Commits`, those listed by `Subscribe` and `Subscribed`, none for the others. A
    /// session handling the message reads the state of these CRDTs only.
    pub fn crdts(&self) -> &[CrdtKey] {
        match self {
            Message::Subscribe { crdts } | Message::Subscribed { crdts } => crdts,
            Message::Heads { crdt, .. }
            | Message::Have { crdt, .. }
            | Message::Known { crdt, .. }
            | Message::Values { crdt, .. }
            | Message::Commits { crdt, .. } => std::slice::from_ref(crdt),
            Message::Hello { .. } | Message::Error { .. } | Message::Ping(_) | Message::Pong(_) => {
                &[]
            }
        }
    }

    /// A `Hello` for this crate's protocol version.
    pub fn hello(peer_id: Uuid) -> Message {
        Message::Hello {
            version: PROTOCOL_VERSION,
            peer_id,
        }
    }
}

/// Why a side refuses or closes, sent in [`Message::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame could not be decoded or broke a limit.
    Malformed,
    /// A text frame was received; only binary frames are allowed.
    TextFrame,
    /// A message kind this version does not know.
    UnknownKind,
    /// The `Hello` carried an incompatible protocol version.
    WrongVersion,
    /// A message arrived out of order (e.g. before `Hello`).
    Unexpected,
    /// Received bytes did not hash to their claimed id, or a commit could not be decoded.
    Verification,
    /// A commit arrived whose parents the receiver cannot obtain.
    MissingParents,
    /// A per-connection bound (buffered values, pending batches) was exceeded.
    Overloaded,
    /// The receiver failed to store or apply what it received.
    Internal,
    /// Any code a newer peer may send that this version does not know.
    #[serde(other)]
    Other,
}

/// Content bytes with the id the sender claims for them (BLAKE3 of the bytes).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// The claimed id; receivers re-hash `bytes` and refuse a mismatch.
    pub id: Id,
    /// The author's exact bytes.
    pub bytes: ByteBuf,
}

impl Blob {
    /// A blob whose id is computed from `bytes`.
    pub fn new(bytes: Vec<u8>) -> Blob {
        Blob {
            id: Id::of(&bytes),
            bytes: ByteBuf(bytes),
        }
    }

    /// The actual id of the carried bytes, if it differs from the claimed one.
    pub fn forged(&self) -> Option<Id> {
        let actual = Id::of(&self.bytes.0);
        (actual != self.id).then_some(actual)
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Blob({:?}, {} bytes)", self.id, self.bytes.0.len())
    }
}

/// Bytes serialized as a MessagePack `bin` (a plain `Vec<u8>` would become an array of ints).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ByteBuf(pub Vec<u8>);

impl Serialize for ByteBuf {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ByteBuf, D::Error> {
        struct BufVisitor;
        impl<'de> Visitor<'de> for BufVisitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v.to_vec()))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                // The structure walk already bounded this length by the frame size.
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(ByteBuf(out))
            }
        }
        d.deserialize_bytes(BufVisitor)
    }
}
