//! Content identifiers: BLAKE3-256 of the exact bytes a value's author encoded.
//!
//! Nobody re-encodes to verify: a receiver hashes the bytes it received (DESIGN §4), once:
//! [`Verified`] is made only by hashing, and whoever holds one takes its id as proven.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A 32-byte content id (BLAKE3-256). Serialized as a MessagePack `bin` of 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub [u8; 32]);

impl Id {
    /// The id of `bytes`: BLAKE3-256 over exactly these bytes.
    pub fn of(bytes: &[u8]) -> Id {
        #[cfg(any(test, feature = "hash-count"))]
        HASHES.with(|n| n.set(n.get() + 1));
        Id(*blake3::hash(bytes).as_bytes())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            s.push(char::from_digit((b & 0xf) as u32, 16).unwrap_or('0'));
        }
        s
    }

    /// The first 12 hex characters, for logs.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_string()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

#[cfg(any(test, feature = "hash-count"))]
thread_local! {
    static HASHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times [`Id::of`] ran on this thread (tests count hashes per received byte;
/// feature `hash-count`).
#[cfg(any(test, feature = "hash-count"))]
pub fn hashes_on_this_thread() -> u64 {
    HASHES.with(std::cell::Cell::get)
}

/// Bytes together with their id, made only by hashing them: received content is hashed once,
/// where it enters (the codec), and every later stage (verification, the store) takes the id
/// as proven.
#[derive(Clone, PartialEq, Eq)]
pub struct Verified {
    id: Id,
    bytes: Vec<u8>,
}

/// Bytes that do not hash to the id claimed for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("bytes claimed as {claimed} hash to {actual}")]
pub struct Forged {
    /// The claimed id.
    pub claimed: Id,
    /// The id of the bytes.
    pub actual: Id,
}

impl Verified {
    /// Hashes `bytes`.
    pub fn new(bytes: Vec<u8>) -> Verified {
        Verified {
            id: Id::of(&bytes),
            bytes,
        }
    }

    /// Hashes `bytes` and checks them against the `claimed` id.
    pub fn check(claimed: Id, bytes: Vec<u8>) -> Result<Verified, Forged> {
        let v = Verified::new(bytes);
        if v.id == claimed {
            Ok(v)
        } else {
            Err(Forged {
                claimed,
                actual: v.id,
            })
        }
    }

    /// Bytes whose id was computed from them by the caller (public for the node's store, which
    /// re-reads what it verified; hidden: nothing else should vouch for a hash): an
    /// [`EncodedCommit`](crate::crdt::EncodedCommit), which only `Commit::encode`, `decode`
    /// and the sync layer's decoding of a `Verified` make.
    #[doc(hidden)]
    pub fn hashed(id: Id, bytes: Vec<u8>) -> Verified {
        Verified { id, bytes }
    }

    /// The id: BLAKE3-256 of [`bytes`](Verified::bytes).
    pub fn id(&self) -> Id {
        self.id
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The id and the bytes.
    pub fn into_parts(self) -> (Id, Vec<u8>) {
        (self.id, self.bytes)
    }
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Verified({:?}, {} bytes)", self.id, self.bytes.len())
    }
}

/// Why a string is not an [`Id`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    /// Not 64 characters long.
    #[error("an id is 64 hex characters, got {0} characters")]
    Length(usize),
    /// A character outside `0-9a-fA-F`.
    #[error("invalid hex character {ch:?} at position {pos}")]
    Char {
        /// The offending character.
        ch: char,
        /// Its position.
        pos: usize,
    },
}

impl FromStr for Id {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Id, ParseIdError> {
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 64 {
            return Err(ParseIdError::Length(chars.len()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in chars.chunks(2).enumerate() {
            let mut byte = 0u8;
            for (j, ch) in pair.iter().enumerate() {
                let d = ch.to_digit(16).ok_or(ParseIdError::Char {
                    ch: *ch,
                    pos: i * 2 + j,
                })?;
                byte = (byte << 4) | d as u8;
            }
            out[i] = byte;
        }
        Ok(Id(out))
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Id, D::Error> {
        struct IdVisitor;
        impl<'de> Visitor<'de> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("32 bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Id, E> {
                let arr: [u8; 32] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(Id(arr))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Id, A::Error> {
                let mut arr = [0u8; 32];
                for (i, slot) in arr.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(de::Error::invalid_length(33, &self));
                }
                Ok(Id(arr))
            }
        }
        d.deserialize_bytes(IdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verified_is_made_by_hashing_once_and_refuses_a_forged_id() {
        let before = hashes_on_this_thread();
        let v = Verified::check(Id::of(b"abc"), b"abc".to_vec()).expect("honest");
        assert_eq!(
            hashes_on_this_thread() - before,
            2,
            "one for the claim, one check"
        );
        assert_eq!(v.id(), Id::of(b"abc"));
        let err = Verified::check(Id::of(b"abc"), b"abd".to_vec()).expect_err("forged");
        assert_eq!(err.actual, Id::of(b"abd"));
        assert_eq!(err.claimed, Id::of(b"abc"));
    }

    #[test]
    fn hex_round_trips() {
        let id = Id::of(b"hello");
        let back: Id = id.to_hex().parse().expect("parse");
        assert_eq!(id, back);
        assert_eq!(id.to_hex().len(), 64);
    }

    #[test]
    fn bad_hex_is_named() {
        assert_eq!("ab".parse::<Id>(), Err(ParseIdError::Length(2)));
        let mut s = "0".repeat(64);
        s.replace_range(5..6, "z");
        assert_eq!(s.parse::<Id>(), Err(ParseIdError::Char { ch: 'z', pos: 5 }));
    }

    #[test]
    fn msgpack_encodes_as_32_byte_bin() {
        let id = Id::of(b"x");
        let bytes = rmp_serde::to_vec(&id).expect("encode");
        assert_eq!(bytes.len(), 34); // bin8 marker + length + 32 bytes
        let back: Id = rmp_serde::from_slice(&bytes).expect("decode");
        assert_eq!(back, id);
        assert!(rmp_serde::from_slice::<Id>(&[0xc4, 2, 1, 2]).is_err());
    }
}
