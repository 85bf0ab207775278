//! Sharing by digests (protocol 5, [`digest`](super::digest)): instead of one `Heads` per
//! CDVCS, a side authorized with an [`Offer`] sends the digest of its whole offer. Each tree
//! position is answered with the receiver's digests of it (unless it sent that position
//! itself, as both do for the root), so on receipt a side holds both digests of the position
//! and compares them node by node:
//!
//! - an equal node: every CDVCS under it is shared at the offered heads (the peer holds
//!   exactly those), with nothing to send;
//! - a differing node above the slot level: the dialling side asks for its children (sends
//!   its own digests of them), the accepting side waits for that;
//! - a differing slot: both sides send `Heads` of each CDVCS they offer in it, which shares
//!   it the usual way (a subscription, answered unless both crossed) and syncs its delta.
//!
//! A reconnect with nothing new thus costs one `Digests` frame per side; `k` changed CDVCSs
//! cost `O(k · DEPTH)` frames. A local change to a CDVCS offered but not yet shared is noted
//! and re-checked ([`Effect::Recheck`]) once it is shared, so nothing that changed during the
//! exchange is left unsent. The digests cover only what each side offers: a side offers a
//! peer without the read right nothing.

use std::collections::{BTreeSet, HashSet};

use crate::crdt::commit::CrdtKey;
use crate::protocol::Message;

use super::digest::{self, DEPTH, NodeId, Offer};
use super::effect::{CloseReason, Effect};
use super::graph::Graphs;
use super::handshake::Role;
use super::rights::Rights;
use super::session::{Shared, SyncSession};

/// The digest exchange of one session.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    offer: Offer,
    /// Positions whose digests we sent.
    sent: HashSet<(u8, u16)>,
    /// Offered CDVCSs that changed here before they were shared.
    dirty: BTreeSet<CrdtKey>,
}

impl SyncSession {
    /// Like [`authorize`](Self::authorize), sharing by digests: `offer` is what this node
    /// offers the peer (each CDVCS it holds and the peer may read, with its heads now). The
    /// root digest goes out, then the configured subscriptions that are not offered (their
    /// `Heads`).
    pub fn authorize_with_offer(
        &mut self,
        rights: Rights,
        offer: Offer,
        graphs: &dyn Graphs,
    ) -> Vec<Effect> {
        if self.closed || self.peer.is_none() || self.rights.is_some() {
            return Vec::new();
        }
        self.rights = Some(rights);
        let mut resume = Resume {
            offer,
            ..Resume::default()
        };
        resume.sent.insert((0, 0));
        let root = Message::Digests {
            level: 0,
            parent: 0,
            digests: resume.offer.digests(0, 0),
        };
        let rest: Vec<CrdtKey> = self
            .config
            .subscriptions
            .iter()
            .filter(|k| resume.offer.heads(k).is_none())
            .cloned()
            .collect();
        self.resume = Some(resume);
        let mut out = vec![Effect::Send(root)];
        out.extend(self.subscribe(rest, graphs));
        out
    }

    /// The peer's digests of position (`level`, `parent`).
    pub(super) fn on_digests(
        &mut self,
        level: u8,
        parent: u16,
        digests: Vec<digest::Digest>,
    ) -> Vec<Effect> {
        if !digest::valid(level, parent) || digests.len() != Offer::nodes(level, parent).len() {
            return self.close(CloseReason::Unexpected {
                kind: "digests",
                detail: "a tree position that does not exist",
            });
        }
        // A session that offers nothing compares against the empty offer.
        let resume = self.resume.get_or_insert_with(Resume::default);
        let mut out = Vec::new();
        if resume.sent.insert((level, parent)) {
            out.push(Effect::Send(Message::Digests {
                level,
                parent,
                digests: resume.offer.digests(level, parent),
            }));
        }
        out.extend(self.resolve(level, parent, &digests));
        out
    }

    /// Both digests of (`level`, `parent`) are known: share the equal nodes, descend into
    /// (or, at the slot level, exchange `Heads` of) the differing ones.
    fn resolve(&mut self, level: u8, parent: u16, theirs: &[digest::Digest]) -> Vec<Effect> {
        let dialler = self.config.handshake.role() == Role::Dialler;
        let Some(resume) = self.resume.as_mut() else {
            return Vec::new();
        };
        let mut equal: Vec<NodeId> = Vec::new();
        let mut out = Vec::new();
        for (node, their) in Offer::nodes(level, parent).into_iter().zip(theirs) {
            if resume.offer.digest(node) == *their {
                equal.push(node);
            } else if node.0 < DEPTH {
                // The dialling side descends; the other answers when asked.
                let child = (node.0 + 1, node.1);
                if dialler && resume.sent.insert(child) {
                    out.push(Effect::Send(Message::Digests {
                        level: child.0,
                        parent: child.1,
                        digests: resume.offer.digests(child.0, child.1),
                    }));
                }
            } else {
                for (key, h) in resume.offer.under(node) {
                    if !self.shared.contains_key(key) && self.requested.insert(key.clone()) {
                        out.push(Effect::Send(Message::Heads {
                            crdt: key.clone(),
                            heads: h.to_vec(),
                        }));
                    }
                }
            }
        }
        for node in equal {
            out.extend(self.share_offered(node));
        }
        out
    }

    /// Shares every CDVCS offered under `node` at its offered heads (the peer offered the
    /// same), re-checking those that changed meanwhile. The peer's heads are handed out as
    /// the hint to save (the node writes only those that differ from the stored hint, so a
    /// reconnect with nothing new writes nothing; reading them here would touch every CDVCS
    /// in one frame).
    fn share_offered(&mut self, node: NodeId) -> Vec<Effect> {
        let peer = self.peer;
        let Some(resume) = self.resume.as_mut() else {
            return Vec::new();
        };
        let max_frontier = self.config.limits.max_frontier;
        let mut out = Vec::new();
        for (key, heads) in resume.offer.under(node) {
            if self.shared.contains_key(key) {
                continue;
            }
            let mut state = Shared::default();
            state.learn(heads, max_frontier);
            state.saved_hint = heads.to_vec();
            if let Some(peer) = peer {
                out.push(Effect::SaveKnownHeads {
                    peer,
                    crdt: key.clone(),
                    heads: heads.to_vec(),
                });
            }
            self.shared.insert(key.clone(), state);
            out.push(Effect::PeerHeads {
                crdt: key.clone(),
                heads: heads.to_vec(),
            });
            if resume.dirty.remove(key) {
                out.push(Effect::Recheck(key.clone()));
            }
        }
        out
    }

    /// The peer's subscriptions would create the replicas `new` here. Beyond the limit an
    /// accepting session closes (a peer may not make this node create replicas without
    /// bound); a dialling one, whose peer offers them, takes what fits and declines the rest
    /// (removed from `crdts`: not shared, nothing created), reported once per session. The
    /// effects, or `Err` with those of the close.
    pub(super) fn within_limit(
        &mut self,
        crdts: &mut Vec<CrdtKey>,
        new: BTreeSet<CrdtKey>,
    ) -> Result<Vec<Effect>, Vec<Effect>> {
        let max = self.config.limits.max_subscriptions;
        let count = self.created + new.len();
        if count <= max {
            self.created = count;
            return Ok(Vec::new());
        }
        if self.config.handshake.role() != Role::Dialler {
            return Err(self.close(CloseReason::TooManySubscriptions { count, max }));
        }
        let room = max.saturating_sub(self.created);
        self.created += room;
        let declined: BTreeSet<CrdtKey> = new.into_iter().skip(room).collect();
        crdts.retain(|c| !declined.contains(c));
        if std::mem::replace(&mut self.declined, true) {
            return Ok(Vec::new());
        }
        Ok(vec![Effect::Declined { max }])
    }

    /// Lowers how many replicas the peer's subscriptions may create on this session (e.g. by
    /// what earlier sessions with the same peer created).
    pub fn limit_subscriptions(&mut self, max: usize) {
        self.config.limits.max_subscriptions = self.config.limits.max_subscriptions.min(max);
    }

    /// Notes a local change of `crdt` while it is offered but not shared yet.
    pub(super) fn note_unshared_change(&mut self, crdt: &CrdtKey) {
        if self.shared.contains_key(crdt) {
            return;
        }
        if let Some(resume) = self.resume.as_mut()
            && resume.offer.heads(crdt).is_some()
        {
            resume.dirty.insert(crdt.clone());
        }
    }
}
