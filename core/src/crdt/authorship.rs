//! Who may have written a commit (DESIGN §11, signed history): pure, no I/O.
//!
//! - A commit's signature covers its id (the hash of its bytes, which include author and
//!   time), under a label of its own so it can be mistaken for no other signature; it travels
//!   and is stored beside the commit, so ids do not change.
//! - The deterministic root and deterministic merges carry no signature.
//! - Every other commit carries a valid signature by its `ed25519:` author — except, in an
//!   **open** CDVCS, commits written before signing existed: no signature and an author that is
//!   not a key; they are attributed `unsigned`.
//! - In an **owned** CDVCS (its user is a public key) the author must also be a writer: the
//!   owner, or a key the owner granted write access to. [`Writers`] decides that from the
//!   commit's ancestors only, so every replica computes the same answer in any delivery order.
//!
//! Grants and revokes are transactions of the owner's commits ([`GRANT_WRITE`],
//! [`REVOKE_WRITE`]) whose params id is the id of the grantee's 32 key bytes (the value holds
//! those bytes). A revoke undoes every grant of the same key that is not its descendant: a
//! grant concurrent with a revoke is undone (revoke wins); a grant made after a revoke (a
//! descendant of it) stands. A writer revoked on one branch can still append to a branch
//! forked before the revoke: those commits are valid by this rule.

use std::collections::HashMap;

use crate::crdt::commit::{Commit, CrdtKey, Transaction};
use crate::id::Id;
use crate::identity::{Keypair, PublicKey, Verifier};

/// The op of a transaction granting write access (params: the grantee key's id).
pub const GRANT_WRITE: &str = "cdvcs/grant-write";
/// The op of a transaction revoking write access (params: the grantee key's id).
pub const REVOKE_WRITE: &str = "cdvcs/revoke-write";

/// What a commit signature signs: this label, then the 32 id bytes.
const LABEL: &[u8] = b"replikativ commit signature v1\0";

/// A commit signature.
pub type Signature = [u8; 64];

fn signed_message(id: &Id) -> Vec<u8> {
    let mut message = Vec::with_capacity(LABEL.len() + 32);
    message.extend_from_slice(LABEL);
    message.extend_from_slice(id.as_bytes());
    message
}

/// Signs the commit `id` with `key`.
pub fn sign(key: &Keypair, id: &Id) -> Signature {
    key.sign(&signed_message(id))
}

/// The id a grant or revoke of `key` names (the id of its 32 bytes, which the value holds).
pub fn key_id(key: &PublicKey) -> Id {
    Id::of(key.as_bytes())
}

/// The transaction granting write access to `key`, and the value its params id names.
pub fn grant_write(key: &PublicKey) -> (Transaction, Vec<u8>) {
    access_tx(GRANT_WRITE, key)
}

/// The transaction revoking write access from `key`, and the value its params id names.
pub fn revoke_write(key: &PublicKey) -> (Transaction, Vec<u8>) {
    access_tx(REVOKE_WRITE, key)
}

fn access_tx(op: &str, key: &PublicKey) -> (Transaction, Vec<u8>) {
    let tx = Transaction {
        op: op.to_owned(),
        params: key_id(key),
    };
    (tx, key.as_bytes().to_vec())
}

/// Whether `op` is a system operation on write access (never handed to realizer handlers).
pub fn is_access_op(op: &str) -> bool {
    op == GRANT_WRITE || op == REVOKE_WRITE
}

/// The owner of a CDVCS: its user when that is a public key (an owned CDVCS), else `None`
/// (an open CDVCS).
pub fn owner_of(key: &CrdtKey) -> Option<PublicKey> {
    key.user.parse().ok()
}

/// Who made a commit, as far as its signature tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorship {
    /// The deterministic root or a deterministic merge: nobody, valid when its parents are.
    Nobody,
    /// Signed by this key, which is its author.
    Signed(PublicKey),
    /// Written before signing existed (open CDVCSs only).
    Unsigned,
}

/// Why a commit is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The signature does not verify for the author named in the commit.
    #[error("commit {id}: its signature is not {author}'s signature of it")]
    BadSignature {
        /// The commit.
        id: Id,
        /// The author it names.
        author: String,
    },
    /// A signature on a commit whose author is not a public key.
    #[error("commit {id}: signed, but its author {author:?} is not an ed25519: key")]
    AuthorNotAKey {
        /// The commit.
        id: Id,
        /// The author it names.
        author: String,
    },
    /// No signature where one is required.
    #[error("commit {id} by {author:?} carries no signature ({why})")]
    Unsigned {
        /// The commit.
        id: Id,
        /// The author it names.
        author: String,
        /// Why one is required here.
        why: &'static str,
    },
    /// In an owned CDVCS, the author may not write.
    #[error(
        "commit {id} by {author}: not a writer of {crdt} (the owner has not granted it write access)"
    )]
    NotAWriter {
        /// The commit.
        id: Id,
        /// Its author.
        author: PublicKey,
        /// The CDVCS.
        crdt: CrdtKey,
    },
    /// A grant or revoke in a commit not made by the owner (or in an open CDVCS).
    #[error("commit {id} by {author}: only the owner of {crdt} grants or revokes write access")]
    AccessByNonOwner {
        /// The commit.
        id: Id,
        /// Its author.
        author: String,
        /// The CDVCS.
        crdt: CrdtKey,
    },
    /// A parent the rule has not seen (parents are judged first).
    #[error("commit {id}: parent {parent} has not been judged before it")]
    UnknownParent {
        /// The commit.
        id: Id,
        /// The parent.
        parent: Id,
    },
}

/// Checks `commit`'s signature; answers who made it.
pub fn authorship(
    crdt: &CrdtKey,
    id: &Id,
    commit: &Commit,
    signature: Option<&Signature>,
) -> Result<Authorship, Refusal> {
    decide(crdt, id, commit, signature, || commit.author.parse().ok())
}

/// At most this many author keys are kept decoded (a replica sees few authors; a peer
/// naming many is refused at its first bad signature, and the cache starts over when full).
const AUTHOR_KEYS_MAX: usize = 1024;

/// The keys commits name as their authors, decoded once: [`authorship`] decodes the
/// author's key for every commit (a point decompression, about a tenth of a signature
/// check), while a replica receives many commits by few authors.
#[derive(Debug, Default)]
pub struct AuthorKeys {
    /// Per author text, its key (`None`: the author is not a key).
    keys: HashMap<String, Option<Verifier>>,
}

impl AuthorKeys {
    /// Decodes the keys of `authors` not decoded yet.
    pub fn learn<'a>(&mut self, authors: impl IntoIterator<Item = &'a str>) {
        for author in authors {
            if !self.keys.contains_key(author) {
                if self.keys.len() >= AUTHOR_KEYS_MAX {
                    self.keys.clear();
                }
                self.keys.insert(author.to_owned(), author.parse().ok());
            }
        }
    }

    /// Exactly [`authorship`], with the author's key decoded here when [`AuthorKeys::learn`]
    /// has seen it.
    pub fn authorship(
        &self,
        crdt: &CrdtKey,
        id: &Id,
        commit: &Commit,
        signature: Option<&Signature>,
    ) -> Result<Authorship, Refusal> {
        decide(crdt, id, commit, signature, || {
            match self.keys.get(&commit.author) {
                Some(key) => *key,
                None => commit.author.parse().ok(),
            }
        })
    }
}

/// [`authorship`] with the author's key from `author_key` (asked only when needed).
fn decide(
    crdt: &CrdtKey,
    id: &Id,
    commit: &Commit,
    signature: Option<&Signature>,
    author_key: impl FnOnce() -> Option<Verifier>,
) -> Result<Authorship, Refusal> {
    let without_author = commit.is_deterministic_merge()
        || (commit.parents.is_empty() && Commit::root(crdt).id == *id);
    if without_author && signature.is_none() {
        return Ok(Authorship::Nobody);
    }
    match (signature, author_key()) {
        (Some(sig), Some(key)) if key.verifies(&signed_message(id), sig) => {
            Ok(Authorship::Signed(key.public()))
        }
        (Some(_), Some(_)) => Err(Refusal::BadSignature {
            id: *id,
            author: commit.author.clone(),
        }),
        (Some(_), None) => Err(Refusal::AuthorNotAKey {
            id: *id,
            author: commit.author.clone(),
        }),
        (None, Some(_)) => Err(Refusal::Unsigned {
            id: *id,
            author: commit.author.clone(),
            why: "its author is a key: a key's commits are always signed",
        }),
        (None, None) if owner_of(crdt).is_some() => Err(Refusal::Unsigned {
            id: *id,
            author: commit.author.clone(),
            why: "every commit of an owned CDVCS is signed",
        }),
        (None, None) => Ok(Authorship::Unsigned),
    }
}

mod writers;
pub use writers::{AccessCommit, RuleError, Verdict, WriterRecord, WriterSource, Writers};

#[cfg(test)]
#[path = "authorship/tests.rs"]
mod tests;
