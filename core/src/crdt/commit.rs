//! The CDVCS commit record and the `(user, crdt-id)` key that names a replicated datatype.
//!
//! A commit is encoded once by its author (MessagePack, array form) and its [`Id`] is the
//! BLAKE3-256 of exactly those bytes, so author and time are covered by the id.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::id::Id;

/// Names one replicated datatype: the owning user and the datatype's UUID.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CrdtKey {
    /// The owner, e.g. `mail:twitter@crawler.com`.
    pub user: String,
    /// The datatype's id.
    pub id: Uuid,
}

impl CrdtKey {
    /// A key from its parts.
    pub fn new(user: impl Into<String>, id: Uuid) -> CrdtKey {
        CrdtKey {
            user: user.into(),
            id,
        }
    }
}

impl std::fmt::Display for CrdtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.user, self.id)
    }
}

/// One transaction of a commit: an operation name and the id of its params value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    /// The op name a realizer dispatches on, e.g. `add-tweet`.
    pub op: String,
    /// The id of the params value in the value space.
    pub params: Id,
}

/// A CDVCS commit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Parents in their order (empty only for the root).
    pub parents: Vec<Id>,
    /// The transactions, applied in this order.
    pub transactions: Vec<Transaction>,
    /// Who made it.
    pub author: String,
    /// Milliseconds since the Unix epoch (0 for the root).
    pub ts: i64,
}

/// Why bytes are not a commit.
#[derive(Debug, thiserror::Error)]
#[error("bytes are not a CDVCS commit record")]
pub struct CommitDecodeError(#[from] rmp_serde::decode::Error);

/// A commit together with the exact bytes its author encoded and their id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedCommit {
    /// BLAKE3 of `bytes`.
    pub id: Id,
    /// The author's encoding.
    pub bytes: Vec<u8>,
    /// The decoded record.
    pub commit: Commit,
    /// Its author's signature of `id` (DESIGN §11), kept and sent beside the commit so ids do
    /// not change; `None` for the root, deterministic merges and commits made before signing.
    pub signature: Option<crate::crdt::authorship::Signature>,
}

impl EncodedCommit {
    /// This commit signed by `key` (which must be its author for the signature to hold).
    pub fn signed(mut self, key: &crate::identity::Keypair) -> EncodedCommit {
        self.signature = Some(crate::crdt::authorship::sign(key, &self.id));
        self
    }
}

impl Commit {
    /// Encodes this commit (done once, by its author) and computes its id.
    pub fn encode(self) -> EncodedCommit {
        // Encoding plain structs of strings, ids and integers into a Vec cannot fail.
        let bytes = rmp_serde::to_vec(&self).unwrap_or_default();
        EncodedCommit {
            id: Id::of(&bytes),
            bytes,
            commit: self,
            signature: None,
        }
    }

    /// Decodes received bytes; the id is the hash of exactly these bytes.
    pub fn decode(bytes: &[u8]) -> Result<EncodedCommit, CommitDecodeError> {
        let commit: Commit = rmp_serde::from_slice(bytes)?;
        Ok(EncodedCommit {
            id: Id::of(bytes),
            bytes: bytes.to_vec(),
            commit,
            signature: None,
        })
    }

    /// The deterministic merge of `parents` (DESIGN §12): parents sorted, no transactions, no
    /// author, time 0, so its id depends only on the set of parents and replicas that merge
    /// the same heads concurrently make the same commit.
    pub fn merge_of(mut parents: Vec<Id>) -> Commit {
        parents.sort();
        parents.dedup();
        Commit {
            parents,
            transactions: Vec::new(),
            author: String::new(),
            ts: 0,
        }
    }

    /// Whether this is a deterministic merge: at least two sorted, distinct parents, no
    /// transactions, no author, time 0.
    pub fn is_deterministic_merge(&self) -> bool {
        self.parents.len() >= 2
            && self.transactions.is_empty()
            && self.author.is_empty()
            && self.ts == 0
            && self.parents.windows(2).all(|w| w[0] < w[1])
    }

    /// The deterministic root of the CDVCS named `key`: it depends on `(user, crdt-id)` only,
    /// so every peer that creates or subscribes to the same CDVCS agrees on it.
    pub fn root(key: &CrdtKey) -> EncodedCommit {
        Commit {
            parents: Vec::new(),
            transactions: vec![Transaction {
                op: "cdvcs/root".to_string(),
                params: Id::of(key.id.as_bytes()),
            }],
            author: key.user.clone(),
            ts: 0,
        }
        .encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_depends_only_on_the_key() {
        let k = CrdtKey::new("u", Uuid::nil());
        assert_eq!(Commit::root(&k).id, Commit::root(&k.clone()).id);
        let other = CrdtKey::new("v", Uuid::nil());
        assert_ne!(Commit::root(&k).id, Commit::root(&other).id);
    }

    #[test]
    fn a_deterministic_merge_depends_only_on_its_set_of_parents() {
        let (a, b, c) = (Id::of(b"a"), Id::of(b"b"), Id::of(b"c"));
        let ab = Commit::merge_of(vec![a, b]).encode();
        assert_eq!(ab.id, Commit::merge_of(vec![b, a]).encode().id);
        assert_eq!(ab.id, Commit::merge_of(vec![b, a, b]).encode().id);
        assert_ne!(ab.id, Commit::merge_of(vec![a, c]).encode().id);
        assert!(ab.commit.is_deterministic_merge());
        let authored = Commit {
            author: "someone".into(),
            ..ab.commit.clone()
        };
        assert!(!authored.is_deterministic_merge());
        let unsorted = Commit {
            parents: vec![ab.commit.parents[1], ab.commit.parents[0]],
            ..ab.commit.clone()
        };
        assert!(!unsorted.is_deterministic_merge());
    }

    #[test]
    fn decode_hashes_received_bytes() {
        let c = Commit {
            parents: vec![Id::of(b"p")],
            transactions: vec![Transaction {
                op: "add".into(),
                params: Id::of(b"x"),
            }],
            author: "a".into(),
            ts: 5,
        }
        .encode();
        let back = Commit::decode(&c.bytes).expect("decode");
        assert_eq!(back, c);
        assert!(Commit::decode(b"\xc1garbage").is_err());
    }
}
