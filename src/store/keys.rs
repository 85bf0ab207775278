//! The byte layout of the state space. Every key is built here, so the layout lives in one file.
//!
//! | key | value |
//! |---|---|
//! | `crdt/<user>/<uuid>/g/<32-byte id>` | CDVCS graph entry: msgpack parents of the commit |
//! | `crdt/<user>/<uuid>/heads` | the CRDT's heads |
//! | `crdt/<user>/<uuid>/w/<32-byte id>` | owned CDVCS: the writer rule's record of the commit |
//! | `crdt/<user>/<uuid>/meta` | the CRDT's kind and metadata |
//! | `peer-key/<32-byte public key>/<user>/<uuid>/heads` | heads a peer is known to have |
//! | `sub/<user>/<uuid>` | a subscription |
//! | `source/<name>` | a source's checkpoint |
//! | `realize/<name>` | a realizer's checkpoint |
//! | `collected/<user>/<uuid>/<record id>` | a record id a collector committed (empty value) |
//! | `sig/<32-byte commit id>` | the commit author's 64-byte signature of the id |
//!
//! `<user>` and `<name>` are arbitrary strings, written length-prefixed (u32 big-endian, then
//! the UTF-8 bytes) so that no user's prefix is a prefix of another's (`alice` vs `alice/x`).
//! `<uuid>` is its 16 raw bytes and an id its 32 raw bytes: fixed widths need no prefix.
//!
//! Peers are named by their public keys. Stores of earlier versions also hold `node/id` (a
//! random peer id) and hints under `peer/<peer uuid>/…`, keyed by such ids: they are no longer
//! read (a first reconnect negotiates a little longer) and stay until the store is rewritten.

use std::ops::ControlFlow;

use uuid::Uuid;

pub use crate::crdt::CrdtKey;
use crate::id::Id;
use crate::store::error::StoreError;
use crate::store::open::Store;

/// Prefix of every per-CRDT record.
pub const CRDT_PREFIX: &[u8] = b"crdt/";
/// Prefix of every peer record, by public key.
pub const PEER_PREFIX: &[u8] = b"peer-key/";
/// Prefix of every subscription.
pub const SUB_PREFIX: &[u8] = b"sub/";
/// Prefix of every commit signature.
pub const SIG_PREFIX: &[u8] = b"sig/";
/// Prefix of every source checkpoint.
pub const SOURCE_PREFIX: &[u8] = b"source/";
/// Prefix of every realizer checkpoint.
pub const REALIZE_PREFIX: &[u8] = b"realize/";
/// Prefix of the collectors' index of committed record ids.
pub const COLLECTED_PREFIX: &[u8] = b"collected/";

fn push_str(key: &mut Vec<u8>, s: &str) {
    // A string longer than u32::MAX bytes cannot reach here: it would not fit in a redb key.
    key.extend_from_slice(&(s.len() as u32).to_be_bytes());
    key.extend_from_slice(s.as_bytes());
}

fn push_crdt(key: &mut Vec<u8>, user: &str, crdt: &Uuid) {
    push_str(key, user);
    key.push(b'/');
    key.extend_from_slice(crdt.as_bytes());
    key.push(b'/');
}

/// `crdt/<user>/`: every CRDT of `user`.
pub fn user_prefix(user: &str) -> Vec<u8> {
    let mut k = CRDT_PREFIX.to_vec();
    push_str(&mut k, user);
    k.push(b'/');
    k
}

/// `crdt/<user>/<uuid>/`: every record of one CRDT.
pub fn crdt_prefix(user: &str, crdt: &Uuid) -> Vec<u8> {
    let mut k = CRDT_PREFIX.to_vec();
    push_crdt(&mut k, user, crdt);
    k
}

/// `sig/<id>`: the signature of commit `id` (commit ids are global: one record per commit,
/// whatever CDVCS holds it).
pub fn commit_signature(id: &Id) -> Vec<u8> {
    let mut k = SIG_PREFIX.to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// `crdt/<user>/<uuid>/g/`: the CDVCS graph of one CRDT.
pub fn graph_prefix(user: &str, crdt: &Uuid) -> Vec<u8> {
    let mut k = crdt_prefix(user, crdt);
    k.extend_from_slice(b"g/");
    k
}

/// `crdt/<user>/<uuid>/g/<id>`: one commit's graph entry.
pub fn graph_entry(user: &str, crdt: &Uuid, commit: &Id) -> Vec<u8> {
    let mut k = graph_prefix(user, crdt);
    k.extend_from_slice(commit.as_bytes());
    k
}

/// `crdt/<user>/<uuid>/w/<id>`: the writer rule's record of a commit of an owned CDVCS.
pub fn writer_record(user: &str, crdt: &Uuid, commit: &Id) -> Vec<u8> {
    let mut k = crdt_prefix(user, crdt);
    k.extend_from_slice(b"w/");
    k.extend_from_slice(commit.as_bytes());
    k
}

/// The commit id at the end of a graph entry key (as returned by a scan of [`graph_prefix`]).
pub fn graph_entry_commit(key: &[u8]) -> Option<Id> {
    let tail = key.len().checked_sub(32).map(|start| &key[start..])?;
    Some(Id(tail.try_into().ok()?))
}

/// `crdt/<user>/<uuid>/heads`.
pub fn heads(user: &str, crdt: &Uuid) -> Vec<u8> {
    let mut k = crdt_prefix(user, crdt);
    k.extend_from_slice(b"heads");
    k
}

/// The commit count of a CDVCS cached with the heads it was counted at (for operators: a
/// CDVCS whose replica is not started is counted once, then read in O(1) until it changes).
pub fn commit_count(user: &str, crdt: &Uuid) -> Vec<u8> {
    let mut k = crdt_prefix(user, crdt);
    k.extend_from_slice(b"count");
    k
}

/// `crdt/<user>/<uuid>/meta`.
pub fn meta(user: &str, crdt: &Uuid) -> Vec<u8> {
    let mut k = crdt_prefix(user, crdt);
    k.extend_from_slice(b"meta");
    k
}

/// `peer-key/<key>/`: everything known about the peer with public key `peer`.
pub fn peer_prefix(peer: &[u8; 32]) -> Vec<u8> {
    let mut k = PEER_PREFIX.to_vec();
    k.extend_from_slice(peer);
    k.push(b'/');
    k
}

/// `peer-key/<key>/<user>/<uuid>/heads`: the heads `peer` is known to have.
pub fn peer_heads(peer: &[u8; 32], user: &str, crdt: &Uuid) -> Vec<u8> {
    let mut k = peer_prefix(peer);
    push_crdt(&mut k, user, crdt);
    k.extend_from_slice(b"heads");
    k
}

/// `sub/<user>/<uuid>`: a subscription to one CRDT.
pub fn subscription(user: &str, crdt: &Uuid) -> Vec<u8> {
    let mut k = SUB_PREFIX.to_vec();
    push_str(&mut k, user);
    k.push(b'/');
    k.extend_from_slice(crdt.as_bytes());
    k
}

/// `source/<name>`: a source's checkpoint.
pub fn source_checkpoint(name: &str) -> Vec<u8> {
    let mut k = SOURCE_PREFIX.to_vec();
    push_str(&mut k, name);
    k
}

/// `collected/<user>/<uuid>/<record id>`: the record `record` (e.g. a tweet id) was committed
/// into this CRDT by a collector on this node; written in the same atomic batch as the commit.
pub fn collected_record(user: &str, crdt: &Uuid, record: &str) -> Vec<u8> {
    let mut k = COLLECTED_PREFIX.to_vec();
    push_crdt(&mut k, user, crdt);
    push_str(&mut k, record);
    k
}

/// `realize/<name>`: a realizer's checkpoint.
pub fn realizer_checkpoint(name: &str) -> Vec<u8> {
    let mut k = REALIZE_PREFIX.to_vec();
    push_str(&mut k, name);
    k
}

/// Reads `<len><utf8>/<16-byte uuid>` from the front of `rest`, returning what follows.
fn parse_crdt(rest: &[u8]) -> Option<(CrdtKey, &[u8])> {
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    if rest.len() < len {
        return None;
    }
    let (user, rest) = rest.split_at(len);
    let rest = rest.strip_prefix(b"/")?;
    let (uuid, rest) = rest.split_first_chunk::<16>()?;
    let key = CrdtKey::new(
        String::from_utf8(user.to_vec()).ok()?,
        Uuid::from_bytes(*uuid),
    );
    Some((key, rest))
}

/// The CRDT a `crdt/...` key belongs to.
pub fn parse_crdt_key(key: &[u8]) -> Option<CrdtKey> {
    let (crdt, rest) = parse_crdt(key.strip_prefix(CRDT_PREFIX)?)?;
    rest.starts_with(b"/").then_some(crdt)
}

/// The CRDT a `sub/...` key names.
pub fn parse_subscription(key: &[u8]) -> Option<CrdtKey> {
    let (crdt, rest) = parse_crdt(key.strip_prefix(SUB_PREFIX)?)?;
    rest.is_empty().then_some(crdt)
}

/// The peer key and CRDT a `peer-key/.../heads` key names.
pub fn parse_peer_heads(key: &[u8]) -> Option<([u8; 32], CrdtKey)> {
    let rest = key.strip_prefix(PEER_PREFIX)?;
    let (peer, rest) = rest.split_first_chunk::<32>()?;
    let (crdt, rest) = parse_crdt(rest.strip_prefix(b"/")?)?;
    (rest == b"/heads").then_some((*peer, crdt))
}

/// A state key by name, for messages: `heads of CDVCS alice/<uuid>`, `checkpoint of source
/// tweets`, …; an unknown key escaped.
pub fn describe(key: &[u8]) -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let name = |rest: &[u8]| {
        let (len, s) = rest.split_first_chunk::<4>()?;
        let s = s.get(..u32::from_be_bytes(*len) as usize)?;
        Some(String::from_utf8_lossy(s).into_owned())
    };
    let known = if let Some(rest) = key.strip_prefix(CRDT_PREFIX) {
        parse_crdt(rest).and_then(|(crdt, rest)| match rest.strip_prefix(b"/")? {
            b"heads" => Some(format!("heads of CDVCS {crdt}")),
            b"meta" => Some(format!("meta record of CRDT {crdt}")),
            b"count" => Some(format!("cached commit count of CDVCS {crdt}")),
            record => record
                .strip_prefix(b"g/")
                .map(|id| format!("graph entry of commit {} in CDVCS {crdt}", hex(id)))
                .or_else(|| {
                    let id = record.strip_prefix(b"w/")?;
                    Some(format!(
                        "writer record of commit {} in CDVCS {crdt}",
                        hex(id)
                    ))
                }),
        })
    } else if let Some(rest) = key.strip_prefix(PEER_PREFIX) {
        parse_peer_heads(key)
            .map(|(peer, crdt)| format!("heads hint of peer {} for CDVCS {crdt}", hex(&peer)))
            .or_else(|| Some(format!("peer record {}", rest.escape_ascii())))
    } else if let Some(rest) = key.strip_prefix(SIG_PREFIX) {
        Some(format!("signature of commit {}", hex(rest)))
    } else if let Some(rest) = key.strip_prefix(SOURCE_PREFIX) {
        name(rest).map(|n| format!("checkpoint of source {n}"))
    } else if let Some(rest) = key.strip_prefix(REALIZE_PREFIX) {
        name(rest).map(|n| format!("checkpoint of realizer {n}"))
    } else if key.starts_with(SUB_PREFIX) {
        parse_subscription(key).map(|crdt| format!("subscription to {crdt}"))
    } else if let Some(rest) = key.strip_prefix(COLLECTED_PREFIX) {
        parse_crdt(rest).map(|(crdt, rest)| {
            let rest = rest.strip_prefix(b"/").unwrap_or(rest);
            let record = name(rest).unwrap_or_else(|| rest.escape_ascii().to_string());
            format!("collected record {record} of CDVCS {crdt}")
        })
    } else {
        None
    };
    known.unwrap_or_else(|| format!("state record {}", key.escape_ascii()))
}

impl Store {
    /// Every CRDT with at least one record, in key order. A skip scan: one seek per CRDT, not
    /// one step per commit.
    pub fn list_crdts(&self) -> Result<Vec<CrdtKey>, StoreError> {
        let mut out = Vec::new();
        let mut from = CRDT_PREFIX.to_vec();
        while let Some(key) = self.seek_state_key(&from, CRDT_PREFIX)? {
            let Some(crdt) = parse_crdt_key(&key) else {
                // Not a well-formed CRDT key: step past just this key.
                from = key;
                from.push(0);
                continue;
            };
            from = crdt_prefix(&crdt.user, &crdt.id);
            // The prefix ends in `/`; bumping it to `0` passes every key under this CRDT.
            if let Some(last) = from.last_mut() {
                *last += 1;
            }
            out.push(crdt);
        }
        Ok(out)
    }

    /// Every subscribed CRDT, in key order.
    pub fn list_subscriptions(&self) -> Result<Vec<CrdtKey>, StoreError> {
        let mut out = Vec::new();
        self.visit_state(SUB_PREFIX, |k, _| {
            out.extend(parse_subscription(k));
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_prefix_never_covers_another_users_records() {
        let id = Uuid::from_u128(7);
        let alice = user_prefix("alice");
        assert!(!heads("alice/x", &id).starts_with(&alice));
        assert!(!heads("alicex", &id).starts_with(&alice));
        assert!(heads("alice", &id).starts_with(&alice));
        assert!(!graph_entry("al", &id, &Id::of(b"c")).starts_with(&user_prefix("a")));
    }

    #[test]
    fn keys_parse_back_to_what_built_them() {
        let crdt = CrdtKey::new("mail:a@b/c", Uuid::from_u128(42));
        let commit = Id::of(b"commit");
        let g = graph_entry(&crdt.user, &crdt.id, &commit);
        assert_eq!(parse_crdt_key(&g), Some(crdt.clone()));
        assert_eq!(graph_entry_commit(&g), Some(commit));
        assert_eq!(
            parse_subscription(&subscription(&crdt.user, &crdt.id)),
            Some(crdt.clone())
        );
        let peer = [9u8; 32];
        assert_eq!(
            parse_peer_heads(&peer_heads(&peer, &crdt.user, &crdt.id)),
            Some((peer, crdt.clone()))
        );
        assert_eq!(parse_subscription(b"sub/\0\0\0\x09short"), None);
        assert!(
            describe(&g).starts_with("graph entry of commit "),
            "{}",
            describe(&g)
        );
        let w = writer_record(&crdt.user, &crdt.id, &commit);
        assert!(
            describe(&w).starts_with("writer record of commit "),
            "{}",
            describe(&w)
        );
        assert_ne!(
            w, g,
            "a commit's writer record and graph entry are distinct records"
        );
        assert_eq!(describe(&source_checkpoint("t")), "checkpoint of source t");
        assert_eq!(describe(b"x\x01"), "state record x\\x01");
    }
}
