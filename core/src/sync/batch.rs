//! [`plan_frames`]: splits an outgoing catch-up into frames bounded by bytes and count, in the
//! wire order values → commits → heads.
//!
//! Invariant: every value a `Commits` frame needs is in a `Values` or `Packs` frame sent after
//! the previous `Commits` frame (or, for a loose value, was sent earlier in the same plan), so
//! a receiver holding values only until the next `Commits` frame never misses one. Each loose
//! value is sent once per plan; each pack once per `Commits` frame that needs it (the
//! receiver then finds every packed param in the packs sent with its commit, as it stores
//! them: through the commit, not by a lookup per value).

use std::collections::HashSet;

use crate::crdt::commit::CrdtKey;
use crate::id::Id;
use crate::pack::VerifiedPack;
use crate::protocol::message::{FixedBytes, Signature};
use crate::protocol::{Blob, ByteBuf, Message, WirePack};

/// Bounds for one frame of a catch-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Target bytes per frame (default 4 MiB). A single item larger than this travels alone.
    pub max_bytes: usize,
    /// Most commits per `Commits` frame (default 1024).
    pub max_commits: usize,
    /// Largest single value or commit that may be sent (default 8 MiB, the codec's
    /// `max_value`).
    pub max_item: usize,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            max_bytes: 4 << 20,
            max_commits: 1024,
            max_item: 8 << 20,
        }
    }
}

/// One commit to send with the values its transactions reference.
#[derive(Clone, Debug)]
pub struct OutgoingCommit {
    /// The commit's id.
    pub id: Id,
    /// Its author's bytes.
    pub bytes: Vec<u8>,
    /// `(id, bytes)` of each params value not in `packs` (the receiver may already hold
    /// some; sending them again is harmless).
    pub values: Vec<(Id, Vec<u8>)>,
    /// The packs holding its other params, as stored (protocol 4).
    pub packs: Vec<VerifiedPack>,
    /// Its author's signature of its id, sent beside it.
    pub signature: Option<crate::crdt::authorship::Signature>,
}

/// Why a catch-up cannot be framed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A value or commit is larger than any frame may carry.
    #[error("{id} is {len} bytes, more than the {max} bytes one frame item may carry")]
    ItemTooLarge {
        /// The item's id.
        id: Id,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Per-item framing overhead: array header, 34-byte id, bin header.
const ITEM_OVERHEAD: usize = 48;

/// Bytes a pack takes on the wire (its ids and bytes, with headers).
fn pack_size(p: &VerifiedPack) -> usize {
    p.bytes().len() + 34 * p.ids().len() + ITEM_OVERHEAD
}

/// Frames `commits` (parents before children) for `crdt`, ending with `Heads { heads }`.
pub fn plan_frames(
    crdt: &CrdtKey,
    commits: Vec<OutgoingCommit>,
    heads: Vec<Id>,
    limits: &BatchLimits,
) -> Result<Vec<Message>, BatchError> {
    let mut out = Vec::new();
    let mut sent_values: HashSet<Id> = HashSet::new();
    let mut values: Vec<Blob> = Vec::new();
    let mut values_bytes = 0usize;
    let mut packs: Vec<WirePack> = Vec::new();
    // The packs of the `Commits` frame being built.
    let mut frame_packs: HashSet<Id> = HashSet::new();
    let mut chunk: Vec<Blob> = Vec::new();
    let mut signatures: Vec<Option<Signature>> = Vec::new();
    let mut chunk_bytes = 0usize;
    let check = |id: Id, len: usize| {
        if len > limits.max_item {
            Err(BatchError::ItemTooLarge {
                id,
                len,
                max: limits.max_item,
            })
        } else {
            Ok(())
        }
    };
    for c in commits {
        check(c.id, c.bytes.len())?;
        let mut new_values = Vec::new();
        for (id, bytes) in c.values {
            check(id, bytes.len())?;
            if sent_values.insert(id) {
                new_values.push((id, bytes));
            }
        }
        for p in &c.packs {
            check(p.id(), p.bytes().len())?;
        }
        let size = c.bytes.len()
            + ITEM_OVERHEAD
            + c.signature.map_or(1, |s| s.len() + 3)
            + new_values
                .iter()
                .map(|(_, b)| b.len() + ITEM_OVERHEAD)
                .sum::<usize>()
            + c.packs.iter().map(pack_size).sum::<usize>();
        let full = values_bytes + chunk_bytes + size > limits.max_bytes
            || chunk.len() >= limits.max_commits;
        if !chunk.is_empty() && full {
            flush(
                crdt,
                &mut out,
                &mut values,
                &mut packs,
                &mut chunk,
                &mut signatures,
            );
            frame_packs.clear();
            values_bytes = 0;
            chunk_bytes = 0;
        }
        for p in c.packs {
            if !frame_packs.insert(p.id()) {
                continue;
            }
            let len = pack_size(&p);
            if !packs.is_empty() && values_bytes + len > limits.max_bytes {
                out.push(Message::Packs {
                    crdt: crdt.clone(),
                    packs: std::mem::take(&mut packs),
                });
                values_bytes = 0;
            }
            values_bytes += len;
            packs.push(WirePack::from(p));
        }
        for (id, bytes) in new_values {
            let len = bytes.len() + ITEM_OVERHEAD;
            // Values may spill into extra frames; they all precede their Commits frame.
            if !values.is_empty() && values_bytes + len > limits.max_bytes {
                out.push(Message::Values {
                    crdt: crdt.clone(),
                    values: std::mem::take(&mut values),
                });
                values_bytes = 0;
            }
            values_bytes += len;
            values.push(Blob {
                id,
                bytes: ByteBuf(bytes),
            });
        }
        chunk_bytes += c.bytes.len() + ITEM_OVERHEAD + c.signature.map_or(1, |s| s.len() + 3);
        chunk.push(Blob {
            id: c.id,
            bytes: ByteBuf(c.bytes),
        });
        signatures.push(c.signature.map(FixedBytes));
    }
    if !chunk.is_empty() {
        flush(
            crdt,
            &mut out,
            &mut values,
            &mut packs,
            &mut chunk,
            &mut signatures,
        );
    }
    out.push(Message::Heads {
        crdt: crdt.clone(),
        heads,
    });
    Ok(out)
}

fn flush(
    crdt: &CrdtKey,
    out: &mut Vec<Message>,
    values: &mut Vec<Blob>,
    packs: &mut Vec<WirePack>,
    chunk: &mut Vec<Blob>,
    signatures: &mut Vec<Option<Signature>>,
) {
    if !values.is_empty() {
        out.push(Message::Values {
            crdt: crdt.clone(),
            values: std::mem::take(values),
        });
    }
    if !packs.is_empty() {
        out.push(Message::Packs {
            crdt: crdt.clone(),
            packs: std::mem::take(packs),
        });
    }
    let mut signatures = std::mem::take(signatures);
    if signatures.iter().all(Option::is_none) {
        // None signed: the empty list says so in one byte.
        signatures.clear();
    }
    out.push(Message::Commits {
        crdt: crdt.clone(),
        commits: std::mem::take(chunk),
        signatures,
    });
}
