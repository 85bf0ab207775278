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

use crate::crdt::commit::CrdtKey;
use crate::id::Id;
use crate::identity::PublicKey;

/// The protocol version spoken by this crate; a peer announcing another one is refused.
/// Version 2: `Hello` carries a public key and a nonce, and `Proof` authenticates it.
/// Version 3: `Commits` carries each commit's signature, and a side's first `Heads` of a CRDT
/// is its subscription (no `Subscribe` is sent).
/// Version 4: a commit's params travel as the sender stores them, in `Packs` (compressed
/// together; the receiver bounds the decompressed size, hashes every value once, and stores
/// the bytes it received).
/// Version 5: `Digests` summarises what a side offers (each CDVCS it holds and the peer may
/// read, with its heads) as a tree of digests, so that a reconnect with nothing new exchanges
/// one digest instead of one `Heads` per CDVCS ([`sync::digest`](crate::sync::digest)).
/// Version 6: those digests are 128 bits, not 64 (two offers that differ but match by chance
/// share their CDVCSs at heads one side lacks, and such a CDVCS syncs only once it changes).
pub const PROTOCOL_VERSION: u32 = 6;

/// Every kind name this version understands, in the order of [`Message`]'s variants.
pub const KINDS: &[&str] = &[
    "hello",
    "proof",
    "subscribe",
    "subscribed",
    "heads",
    "have",
    "known",
    "values",
    "packs",
    "commits",
    "error",
    "ping",
    "pong",
    "digests",
];

/// One protocol message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    /// First message of each side: protocol version, the sender's public key and a fresh
    /// random nonce (see [`sync::handshake`](crate::sync::handshake)).
    Hello {
        /// Must equal [`PROTOCOL_VERSION`].
        version: u32,
        /// The sender's public key: its identity.
        key: PublicKey,
        /// Fresh random bytes of this connection.
        nonce: Nonce,
    },
    /// Second message of each side: its signature over the handshake transcript, proving it
    /// holds the secret key its `Hello` announced.
    Proof {
        /// Ed25519 signature of the transcript.
        signature: Signature,
    },
    /// Asks the other side to share these CRDTs (creating empty replicas it lacks). Since
    /// version 3 a side subscribes with its first [`Message::Heads`] of a CRDT instead; a
    /// `Subscribe` is still answered.
    Subscribe {
        /// The CRDTs to share.
        crdts: Vec<CrdtKey>,
    },
    /// Acknowledges a [`Message::Subscribe`]: these CRDTs are now shared on this connection.
    /// Not sent by this version (the answering `Heads` acknowledges); still understood.
    Subscribed {
        /// The CRDTs now shared.
        crdts: Vec<CrdtKey>,
    },
    /// The sender's current heads of one CRDT (it holds them and all their ancestors). The
    /// first `Heads` of a CRDT on a connection is also the sender's subscription to it: the
    /// receiver checks it like a [`Message::Subscribe`] (read right, else `Forbidden`; replica
    /// creation; the subscription limit) and answers with its own `Heads`, unless its own
    /// subscription already carried them.
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
    /// Values needed by the commits that follow, as packs (compressed together, as the sender
    /// stores them; [`crate::pack`]), each with the ids of its values in pack order. The
    /// receiver refuses a pack declaring more than [`crate::pack::MAX_PACK_BYTES`] of values
    /// before decompressing it, hashes every value once against its id, and stores the pack
    /// bytes as received. Since version 4.
    Packs {
        /// Which CRDT the following commits belong to.
        crdt: CrdtKey,
        /// The packs.
        packs: Vec<WirePack>,
    },
    /// Encoded commits, parents before children, with their authors' signatures (DESIGN
    /// §11): `signatures` is empty (none signed) or holds one entry per commit, `None` for an
    /// unsigned one (the root, deterministic merges, commits made before signing).
    Commits {
        /// Which CRDT.
        crdt: CrdtKey,
        /// Each commit's claimed id and its author's bytes.
        commits: Vec<Blob>,
        /// The author's signature of each commit's id, in the same order.
        signatures: Vec<Option<Signature>>,
    },
    /// A refusal; the sender closes the connection after it, except for
    /// [`ErrorCode::Forbidden`], which refuses one request only.
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
    /// Digests of tree nodes of the sender's offer (protocol 5): the root alone (`level` 0),
    /// or the 16 children of node `parent` of the level above. Each side sends the root after
    /// authorization; a side answers each position with its own digests unless it sent that
    /// position already; the dialling side then asks for the children of every node that
    /// differs, and at the slot level both sides send `Heads` of their CDVCSs in a differing
    /// slot. Equal nodes are shared at the offered heads.
    Digests {
        /// 0 for the root, up to [`DEPTH`](crate::sync::digest::DEPTH).
        level: u8,
        /// The parent node's index in the level above (0 for the root).
        parent: u16,
        /// One 128-bit digest per node described.
        digests: Vec<Digest>,
    },
}

impl Message {
    /// The kind name used on the wire, e.g. `"heads"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Proof { .. } => "proof",
            Message::Subscribe { .. } => "subscribe",
            Message::Subscribed { .. } => "subscribed",
            Message::Heads { .. } => "heads",
            Message::Have { .. } => "have",
            Message::Known { .. } => "known",
            Message::Values { .. } => "values",
            Message::Packs { .. } => "packs",
            Message::Commits { .. } => "commits",
            Message::Error { .. } => "error",
            Message::Ping(_) => "ping",
            Message::Pong(_) => "pong",
            Message::Digests { .. } => "digests",
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
            | Message::Packs { crdt, .. }
            | Message::Commits { crdt, .. } => std::slice::from_ref(crdt),
            Message::Hello { .. }
            | Message::Proof { .. }
            | Message::Error { .. }
            | Message::Ping(_)
            | Message::Pong(_)
            | Message::Digests { .. } => &[],
        }
    }

    /// A `Hello` for this crate's protocol version.
    pub fn hello(key: PublicKey, nonce: [u8; 32]) -> Message {
        Message::Hello {
            version: PROTOCOL_VERSION,
            key,
            nonce: FixedBytes(nonce),
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
    /// The handshake failed: a proof that does not verify, or our own key.
    Authentication,
    /// The peer did not complete a step within the time allowed (e.g. the handshake).
    Timeout,
    /// The peer's key is not admitted on this node; the sender closes after it.
    Unauthorized,
    /// A request needs a right the peer's key lacks on this node (the message names the
    /// CDVCS and the right); the request is refused and the connection stays.
    Forbidden,
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

/// A pack on the wire: the ids of its values (in pack order) and its bytes as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePack {
    /// The claimed id of each value, in pack order; receivers hash every value and refuse a
    /// mismatch.
    pub ids: Vec<Id>,
    /// The pack bytes ([`crate::pack`] format).
    pub bytes: ByteBuf,
}

impl fmt::Debug for WirePack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WirePack({} values, {} bytes)",
            self.ids.len(),
            self.bytes.0.len()
        )
    }
}

impl From<crate::pack::VerifiedPack> for WirePack {
    fn from(p: crate::pack::VerifiedPack) -> WirePack {
        let (_, bytes, ids) = p.into_parts();
        WirePack {
            ids,
            bytes: ByteBuf(bytes),
        }
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

/// Exactly `N` bytes, serialized as a MessagePack `bin` of that length.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedBytes<const N: usize>(pub [u8; N]);

/// A handshake nonce.
pub type Nonce = FixedBytes<32>;
/// An Ed25519 signature.
pub type Signature = FixedBytes<64>;
/// The digest of a node of an offer's tree (protocol 6: 128 bits).
pub type Digest = FixedBytes<16>;

impl<const N: usize> fmt::Debug for FixedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes ")?;
        for b in self.0.iter().take(6) {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

impl<const N: usize> Serialize for FixedBytes<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de, const N: usize> Deserialize<'de> for FixedBytes<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FixedBytes<N>, D::Error> {
        struct FixedVisitor<const N: usize>;
        impl<const N: usize> Visitor<'_> for FixedVisitor<N> {
            type Value = FixedBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a byte string of {N} bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<FixedBytes<N>, E> {
                v.try_into()
                    .map(FixedBytes)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(FixedVisitor::<N>)
    }
}
