//! [`Received`]: a decoded frame as the codec hands it on, its content hashed once.
//!
//! The codec is where received bytes enter, so it is where they are hashed: each value and
//! commit of a `Values` or `Commits` frame becomes a [`Verified`], each pack of a `Packs`
//! frame a [`VerifiedPack`] (decoded within its bound, every value hashed) (or the frame is refused as
//! [`ProtocolError::ForgedId`]), and nothing after it (the session's verification, the store)
//! hashes them again.

use crate::crdt::commit::CrdtKey;
use crate::id::Verified;

use super::codec::check_pack;
use super::error::ProtocolError;
use super::message::{Blob, ByteBuf, Message, Signature, WirePack};
use crate::pack::VerifiedPack;

/// A received message whose content blobs are verified.
#[derive(Debug)]
pub enum Received {
    /// Values (transaction params) needed by the commits that follow, each hashed once.
    Values {
        /// Which CRDT the following commits belong to.
        crdt: CrdtKey,
        /// The values.
        values: Vec<Verified>,
    },
    /// Packs of values needed by the commits that follow, each value hashed once.
    Packs {
        /// Which CRDT the following commits belong to.
        crdt: CrdtKey,
        /// The packs, as received.
        packs: Vec<VerifiedPack>,
    },
    /// Encoded commits, parents before children, each hashed once.
    Commits {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The commits' bytes.
        commits: Vec<Verified>,
        /// Each commit's signature, in the same order (empty: none signed).
        signatures: Vec<Option<Signature>>,
    },
    /// Any other message. [`Received::check`] never puts `Values`, `Packs` or `Commits` here; one put
    /// here by hand is treated as unverified (hashed by whoever takes it).
    Other(Message),
}

impl Received {
    /// Hashes every content blob of `msg` once and checks it against its claimed id.
    pub fn check(msg: Message) -> Result<Received, ProtocolError> {
        Ok(match msg {
            Message::Values { crdt, values } => Received::Values {
                crdt,
                values: verify_all("values", values)?,
            },
            Message::Packs { crdt, packs } => Received::Packs {
                crdt,
                packs: packs
                    .into_iter()
                    .map(check_pack)
                    .collect::<Result<_, _>>()?,
            },
            Message::Commits {
                crdt,
                commits,
                signatures,
            } => {
                if !signatures.is_empty() && signatures.len() != commits.len() {
                    return Err(ProtocolError::Signatures {
                        commits: commits.len(),
                        signatures: signatures.len(),
                    });
                }
                Received::Commits {
                    crdt,
                    commits: verify_all("commits", commits)?,
                    signatures,
                }
            }
            other => Received::Other(other),
        })
    }

    /// The wire kind name, e.g. `"commits"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Received::Values { .. } => "values",
            Received::Packs { .. } => "packs",
            Received::Commits { .. } => "commits",
            Received::Other(msg) => msg.kind(),
        }
    }

    /// The CRDTs this message is about (see [`Message::crdts`]).
    pub fn crdts(&self) -> &[CrdtKey] {
        match self {
            Received::Values { crdt, .. }
            | Received::Packs { crdt, .. }
            | Received::Commits { crdt, .. } => std::slice::from_ref(crdt),
            Received::Other(msg) => msg.crdts(),
        }
    }
}

impl From<Received> for Message {
    fn from(r: Received) -> Message {
        match r {
            Received::Values { crdt, values } => Message::Values {
                crdt,
                values: values.into_iter().map(Blob::from).collect(),
            },
            Received::Packs { crdt, packs } => Message::Packs {
                crdt,
                packs: packs.into_iter().map(WirePack::from).collect(),
            },
            Received::Commits {
                crdt,
                commits,
                signatures,
            } => Message::Commits {
                crdt,
                commits: commits.into_iter().map(Blob::from).collect(),
                signatures,
            },
            Received::Other(msg) => msg,
        }
    }
}

impl From<Verified> for Blob {
    fn from(v: Verified) -> Blob {
        let (id, bytes) = v.into_parts();
        Blob {
            id,
            bytes: ByteBuf(bytes),
        }
    }
}

fn verify_all(kind: &'static str, blobs: Vec<Blob>) -> Result<Vec<Verified>, ProtocolError> {
    blobs
        .into_iter()
        .map(|b| {
            Verified::check(b.id, b.bytes.0).map_err(|f| ProtocolError::ForgedId {
                kind,
                claimed: f.claimed,
                actual: f.actual,
            })
        })
        .collect()
}
