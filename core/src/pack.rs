//! Packs: many content-addressed values compressed together, in the manner of git's packfiles
//! (issue 16). Pure: no I/O, no store, no runtime. The decoder is pure Rust (`ruzstd`, which
//! builds for wasm32: the browser peer decodes what a node ships); [`encode`] uses the C
//! `zstd` library (a wasm32 build of this module would put it behind a feature; not done yet).
//!
//! # Format
//!
//! | bytes | what |
//! |---|---|
//! | 4 | magic `RKPK` |
//! | 1 | version, [`VERSION`] |
//! | varint | value count `n` |
//! | `n` varints | each value's uncompressed length, in order |
//! | rest | ONE zstd frame of the values concatenated, nothing after it |
//!
//! Varints are LEB128 (7 bits a byte, low first), at most 10 bytes, no overlong zero tail.
//! A value's id stays BLAKE3 of its uncompressed bytes: a pack changes how values are stored
//! and sent, never what they are.
//!
//! # Decoding untrusted bytes
//!
//! [`decode`] refuses, with a typed [`PackError`] and before it decompresses anything, a
//! header that declares more than the caller's `max_total` bytes; it then gives the decoder a
//! window no larger than the declared total needs, and reads at most the declared total out of
//! the frame: a frame that would inflate beyond its declared lengths (a decompression bomb) is
//! refused once it passes them, whatever it would have inflated to. Truncated bytes, a bad
//! magic or version, lengths that disagree with the frame and bytes after the frame are errors.
//!
//! ```
//! # #[cfg(feature = "native")] {
//! use replikativ_core::pack;
//! let packed = pack::encode(&[b"one", b"two"]);
//! assert_eq!(pack::decode(&packed, 1 << 20)?, vec![b"one".to_vec(), b"two".to_vec()]);
//! # }
//! # Ok::<(), replikativ_core::pack::PackError>(())
//! ```

use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use crate::id::Id;

/// The first bytes of every pack.
pub const MAGIC: [u8; 4] = *b"RKPK";
/// The pack format version this build writes and reads.
pub const VERSION: u8 = 1;
/// The zstd level [`encode`] compresses with. Measured (`cargo bench --bench pipeline --
/// ingest`, "zstd level of packs", 2 busy cores): on the shipped sample's 517 distinct tweets
/// in one frame, level 3 keeps 0.154 of the bytes at 530 MB/s, level 1 0.166 at 786 MB/s; on
/// commits of 1,000 of the bench stream (which repeats tweets) 0.081 against 0.165. Since
/// store format 3 (no per-value index) compression is about half of the store writer's CPU
/// at level 3; even so ingest runs at 3.65x raw redb writing the uncompressed bytes (quiet
/// machine, BENCHMARKS.md), so the smaller store and wire win.
pub const LEVEL: i32 = 3;

/// The most bytes of values one pack may hold, writers and readers alike: the store packs at
/// most this much together and refuses to decode a pack declaring more, and a peer refuses a
/// received pack declaring more before decompressing it. Bounds a decoded pack's memory: a
/// commit of 1,000 tweets is about 2.6 MB.
pub const MAX_PACK_BYTES: usize = 4 << 20;

/// A pack whose values were each hashed once and matched the ids it came with: what a
/// receiver stores as it received it (no re-compression), and finds its values by.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedPack {
    id: Id,
    bytes: Vec<u8>,
    ids: Vec<Id>,
}

/// Why a received pack is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackCheckError {
    /// The bytes are not a valid pack within the bound (a decompression bomb among them).
    #[error("pack {pack}: {source}")]
    Pack {
        /// BLAKE3 of the pack bytes.
        pack: Id,
        /// Why.
        #[source]
        source: PackError,
    },
    /// The pack holds another number of values than ids came with it.
    #[error("pack {pack} holds {values} values, {ids} ids came with it")]
    Count {
        /// BLAKE3 of the pack bytes.
        pack: Id,
        /// Values in the pack.
        values: usize,
        /// Ids sent with it.
        ids: usize,
    },
    /// A value does not hash to the id sent for it.
    #[error("value {index} of pack {pack}, claimed as {claimed}, hashes to {actual}")]
    Forged {
        /// BLAKE3 of the pack bytes.
        pack: Id,
        /// Its place in the pack.
        index: usize,
        /// The id sent for it.
        claimed: Id,
        /// The hash of its bytes.
        actual: Id,
    },
}

impl VerifiedPack {
    /// Decodes `bytes` (refusing, before decompressing, a pack that declares more than
    /// `max_total` bytes of values, and stopping at the declared size whatever the frame
    /// holds) and hashes every value once against `ids`, in order.
    pub fn check(
        bytes: Vec<u8>,
        ids: Vec<Id>,
        max_total: usize,
    ) -> Result<VerifiedPack, PackCheckError> {
        let pack = Id::of(&bytes);
        let unpacked = decode_joined(&bytes, max_total)
            .map_err(|source| PackCheckError::Pack { pack, source })?;
        if unpacked.len() != ids.len() {
            return Err(PackCheckError::Count {
                pack,
                values: unpacked.len(),
                ids: ids.len(),
            });
        }
        for (index, (value, claimed)) in unpacked.iter().zip(&ids).enumerate() {
            let actual = Id::of(value);
            if actual != *claimed {
                return Err(PackCheckError::Forged {
                    pack,
                    index,
                    claimed: *claimed,
                    actual,
                });
            }
        }
        Ok(VerifiedPack {
            id: pack,
            bytes,
            ids,
        })
    }

    /// A pack this process made or read from its own store, taken as verified (the store
    /// checks its packs on read): `id` is the hash of `bytes`, `ids` those of its values.
    #[doc(hidden)]
    pub fn trusted(id: Id, bytes: Vec<u8>, ids: Vec<Id>) -> VerifiedPack {
        VerifiedPack { id, bytes, ids }
    }

    /// BLAKE3 of the pack bytes.
    pub fn id(&self) -> Id {
        self.id
    }

    /// The pack bytes as stored and sent.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The ids of its values, in pack order.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    /// The parts: id, bytes, value ids.
    pub fn into_parts(self) -> (Id, Vec<u8>, Vec<Id>) {
        (self.id, self.bytes, self.ids)
    }
}

impl std::fmt::Debug for VerifiedPack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerifiedPack({:?}, {} values, {} bytes)",
            self.id,
            self.ids.len(),
            self.bytes.len()
        )
    }
}

/// Why bytes are not a valid pack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a pack (wrong magic bytes)")]
    BadMagic,
    /// A pack format this build does not read.
    #[error("pack format version {0} is not supported (this build reads {VERSION})")]
    Version(u8),
    /// The bytes end inside the header.
    #[error("the pack is truncated inside its header ({0})")]
    Truncated(&'static str),
    /// A varint longer than 10 bytes, overflowing 64 bits, or with a zero tail.
    #[error("the pack header has a malformed varint ({0})")]
    Varint(&'static str),
    /// The declared lengths add up to more than the caller accepts.
    #[error("the pack declares {declared} bytes of values, more than the {max} accepted")]
    TooLarge {
        /// The sum of the declared lengths (saturated).
        declared: u64,
        /// The caller's bound.
        max: usize,
    },
    /// The frame's own content size disagrees with the declared lengths.
    #[error("the pack declares {declared} bytes but its frame says {frame}")]
    ContentSize {
        /// The sum of the declared lengths.
        declared: usize,
        /// The frame header's content size.
        frame: u64,
    },
    /// The frame inflates beyond the declared lengths (refused once it passes them).
    #[error("the pack's frame inflates beyond the {declared} bytes its header declares")]
    Inflates {
        /// The sum of the declared lengths.
        declared: usize,
    },
    /// The frame ends before the declared lengths are filled.
    #[error("the pack's frame holds {actual} bytes, its header declares {declared}")]
    Short {
        /// The sum of the declared lengths.
        declared: usize,
        /// What the frame held.
        actual: usize,
    },
    /// The zstd frame is damaged or truncated (the decoder's message).
    #[error("the pack's zstd frame is damaged or truncated: {0}")]
    Frame(String),
    /// Bytes follow the frame.
    #[error("{0} bytes follow the pack's frame")]
    Trailing(usize),
}

/// A decoded pack: the values concatenated, and where each ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unpacked {
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl Unpacked {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the pack holds no value.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Value `i`, in pack order.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    /// The values in pack order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Total bytes of the values.
    pub fn total_bytes(&self) -> usize {
        self.data.len()
    }

    /// What decoding a pack of `values` gives, made from the values themselves.
    pub fn from_values(values: &[&[u8]]) -> Unpacked {
        let mut data = Vec::with_capacity(values.iter().map(|v| v.len()).sum());
        let mut ends = Vec::with_capacity(values.len());
        for v in values {
            data.extend_from_slice(v);
            ends.push(data.len());
        }
        Unpacked { data, ends }
    }
}

/// Packs `values` (in this order) into one compressed pack (feature `native`: the C encoder).
#[cfg(feature = "native")]
pub fn encode(values: &[&[u8]]) -> Vec<u8> {
    let total: usize = values.iter().map(|v| v.len()).sum();
    let mut joined = Vec::with_capacity(total);
    for v in values {
        joined.extend_from_slice(v);
    }
    let mut out = Vec::with_capacity(16 + values.len() * 2 + total / 4);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    put_varint(&mut out, values.len() as u64);
    for v in values {
        put_varint(&mut out, v.len() as u64);
    }
    match zstd::bulk::compress(&joined, LEVEL) {
        Ok(frame) => out.extend_from_slice(&frame),
        // The C library fails only when it cannot allocate its context: the values then go
        // into a frame of raw (stored) blocks, which every zstd decoder reads.
        Err(_) => raw_frame(&mut out, &joined),
    }
    out
}

/// Decodes a pack, accepting at most `max_total` bytes of values.
pub fn decode(bytes: &[u8], max_total: usize) -> Result<Vec<Vec<u8>>, PackError> {
    Ok(decode_joined(bytes, max_total)?
        .iter()
        .map(<[u8]>::to_vec)
        .collect())
}

/// Like [`decode`], keeping the values in one buffer (one allocation, no copies).
pub fn decode_joined(bytes: &[u8], max_total: usize) -> Result<Unpacked, PackError> {
    let (lengths, frame) = header(bytes, max_total)?;
    let total: usize = lengths.iter().sum();
    let data = inflate(frame, total)?;
    let mut ends = Vec::with_capacity(lengths.len());
    let mut at = 0;
    for len in lengths {
        at += len;
        ends.push(at);
    }
    Ok(Unpacked { data, ends })
}

/// The declared lengths and the frame, checked against `max_total` before any decompression.
pub fn header(bytes: &[u8], max_total: usize) -> Result<(Vec<usize>, &[u8]), PackError> {
    let rest = match bytes.split_first_chunk::<4>() {
        Some((magic, rest)) if *magic == MAGIC => rest,
        Some(_) => return Err(PackError::BadMagic),
        None if MAGIC.starts_with(bytes) => return Err(PackError::Truncated("magic")),
        None => return Err(PackError::BadMagic),
    };
    let (&version, mut rest) = rest.split_first().ok_or(PackError::Truncated("version"))?;
    if version != VERSION {
        return Err(PackError::Version(version));
    }
    let count = take_varint(&mut rest, "value count")?;
    // Every length takes at least one byte: a count beyond what follows cannot be honest,
    // and is refused before anything is allocated for it.
    if count > rest.len() as u64 {
        return Err(PackError::Truncated("value lengths"));
    }
    let mut lengths = Vec::with_capacity(count as usize);
    let mut total: usize = 0;
    for _ in 0..count {
        let len = take_varint(&mut rest, "value length")?;
        // The sum stays within `max_total`, so it (and every length) fits a usize.
        match usize::try_from(len)
            .ok()
            .and_then(|l| total.checked_add(l))
            .filter(|t| *t <= max_total)
        {
            Some(t) => total = t,
            None => {
                return Err(PackError::TooLarge {
                    declared: (total as u64).saturating_add(len),
                    max: max_total,
                });
            }
        }
        lengths.push(len as usize);
    }
    Ok((lengths, rest))
}

/// Inflates `frame`, which must hold exactly `total` bytes, reading at most that many.
fn inflate(frame: &[u8], total: usize) -> Result<Vec<u8>, PackError> {
    let damaged = |e: ruzstd::decoding::errors::FrameDecoderError| PackError::Frame(e.to_string());
    let mut source = frame;
    let mut decoder = FrameDecoder::new();
    // The encoder never needs a window larger than twice its input (zstd's minimum is 1 KiB):
    // a frame asking for more is refused before its window is allocated.
    decoder.set_max_window_size((total as u64).saturating_mul(2).max(1 << 10));
    decoder.init(&mut source).map_err(damaged)?;
    let claimed = decoder.content_size();
    if claimed != 0 && claimed != total as u64 {
        return Err(PackError::ContentSize {
            declared: total,
            frame: claimed,
        });
    }
    let mut out = Vec::with_capacity(total);
    loop {
        // One block at a time (at most 128 KiB): the check below runs before each block's
        // output is taken, so at most one block and the window pass the declared total.
        let finished = decoder
            .decode_blocks(&mut source, BlockDecodingStrategy::UptoBlocks(1))
            .map_err(damaged)?;
        if out.len() + decoder.can_collect() > total {
            return Err(PackError::Inflates { declared: total });
        }
        decoder
            .collect_to_writer(&mut out)
            .map_err(|e| PackError::Frame(e.to_string()))?;
        if finished && decoder.is_finished() {
            break;
        }
    }
    if out.len() != total {
        return Err(PackError::Short {
            declared: total,
            actual: out.len(),
        });
    }
    if !source.is_empty() {
        return Err(PackError::Trailing(source.len()));
    }
    Ok(out)
}

/// Appends a zstd frame of raw blocks holding `data` (no compression).
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub(crate) fn raw_frame(out: &mut Vec<u8>, data: &[u8]) {
    const BLOCK: usize = 128 * 1024;
    out.extend_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame header descriptor: 8-byte content size, single segment (no window descriptor).
    out.push(0b1110_0000);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut chunks = data.chunks(BLOCK).peekable();
    if chunks.peek().is_none() {
        // An empty frame is one empty raw block, marked last.
        out.extend_from_slice(&[1, 0, 0]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u32::from(chunks.peek().is_none());
        // Block header: last flag, type 0 (raw), size; 3 bytes little-endian.
        let header = last | ((chunk.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
}

#[cfg(all(test, feature = "native"))]
mod tests;
mod varint;

#[cfg(feature = "native")]
use varint::put_varint;
use varint::take_varint;
