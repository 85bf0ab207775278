//! [`SyncSession`]: the replication state machine of one connection, driven by inputs
//! (`start`, `on_received`/`on_message`, `on_local_change`, `on_applied`, …) and answering
//! with [`Effect`]s. No I/O and no clock: the driver carries out the effects in order.
//! Receipt of content (`Values`, `Commits`) is in module `receive`; outgoing flow control is
//! [`Flow`](super::Flow), beside the session.
//!
//! Each input reads the state of the CRDTs its message names ([`Message::crdts`]) and no
//! other, so a driver may hand it a [`Graphs`] holding only those.
//!
//! Per shared CRDT the session keeps a bounded *frontier*: ids the peer is known to hold
//! (announced heads, `Known` answers, tips of batches it sent us, heads we sent it). What we
//! send is always `commits_between(frontier, our heads)`, and only when that is non-empty, so
//! nothing is echoed back to where it came from and quiet CRDTs cost nothing.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use crate::crdt::commit::CrdtKey;
use crate::id::Id;
use crate::identity::PublicKey;
use crate::protocol::{Message, ProtocolError, Received};

use super::config::SessionConfig;
use super::effect::{CloseReason, Effect, Request, SyncError};
use super::graph::{Graphs, Overlay, with_graph};
use super::negotiation::Negotiation;
use super::receive::Input;
use super::rights::Rights;
use super::verify::{Checked, CheckedPack};

/// Replication state of one shared CRDT on this connection.
#[derive(Default)]
pub(crate) struct Shared {
    /// Ids the peer holds (with ancestors), all present locally; bounded, oldest dropped.
    pub(crate) frontier: VecDeque<Id>,
    negotiation: Option<Negotiation>,
    pub(super) pending_values: Vec<Checked>,
    pub(super) pending_packs: Vec<CheckedPack>,
    pub(super) pending_bytes: usize,
    /// Batches handed out in `Apply` effects and not yet confirmed, in order.
    pub(super) inflight: VecDeque<Vec<Id>>,
    pub(super) inflight_ids: HashSet<Id>,
    /// Heads received while batches were in flight, processed once they are applied.
    deferred_heads: Option<Vec<Id>>,
    /// The hint last saved for this peer, to avoid saving it again.
    pub(super) saved_hint: Vec<Id>,
}

/// The per-connection replication state machine (see the [module docs](super)).
pub struct SyncSession {
    pub(super) config: SessionConfig,
    /// The peer's key, once it proved it.
    pub(super) peer: Option<PublicKey>,
    /// The peer's rights on this node, once the driver authorized it.
    pub(super) rights: Option<Rights>,
    pub(super) closed: bool,
    pub(super) shared: BTreeMap<CrdtKey, Shared>,
    /// CRDTs we subscribed to (our `Heads` sent), shared once the peer answers.
    pub(super) requested: BTreeSet<CrdtKey>,
    /// The digest exchange, when sharing by digests (module `resume`).
    pub(super) resume: Option<super::resume::Resume>,
    /// Replicas this peer's subscriptions created here (bounded by `max_subscriptions`).
    pub(super) created: usize,
    /// Whether a dialling session declined offers beyond that bound (reported once).
    pub(super) declined: bool,
}

impl SyncSession {
    /// A session that has not started yet.
    pub fn new(config: SessionConfig) -> SyncSession {
        SyncSession {
            config,
            peer: None,
            rights: None,
            closed: false,
            shared: BTreeMap::new(),
            requested: BTreeSet::new(),
            resume: None,
            created: 0,
            declined: false,
        }
    }

    /// The peer's key, once it proved it.
    pub fn peer(&self) -> Option<PublicKey> {
        self.peer
    }

    /// The peer's rights on this node, once it is authorized.
    pub fn rights(&self) -> Option<Rights> {
        self.rights
    }

    /// The rights in force (none before authorization).
    pub(super) fn granted(&self) -> Rights {
        self.rights.unwrap_or_default()
    }

    /// Whether the session has closed (it then ignores all input).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The CRDTs shared on this connection.
    pub fn shared(&self) -> impl Iterator<Item = &CrdtKey> {
        self.shared.keys()
    }

    /// Opens the connection: our `Hello`. The configured subscriptions follow once the peer
    /// is authenticated and [authorized](Self::authorize).
    pub fn start(&mut self) -> Vec<Effect> {
        vec![Effect::Send(self.config.handshake.hello())]
    }

    /// The driver could not decode a frame: tell the peer, report forged content, close.
    pub fn on_decode_error(&mut self, err: ProtocolError) -> Vec<Effect> {
        if self.closed {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let ProtocolError::ForgedId {
            claimed, actual, ..
        } = &err
        {
            out.push(Effect::Reject {
                peer: self.peer,
                crdt: None,
                id: *claimed,
                reason: SyncError::HashMismatch {
                    claimed: *claimed,
                    actual: *actual,
                },
            });
        }
        out.extend(self.close(CloseReason::Protocol(err)));
        out
    }

    /// One frame from the peer as the codec received it: its content is already verified and
    /// is not hashed again.
    pub fn on_received(&mut self, msg: Received, graphs: &dyn Graphs) -> Vec<Effect> {
        self.on_input(Input::from(msg), graphs)
    }

    /// One message from the peer, not received through the codec: its content is hashed here.
    pub fn on_message(&mut self, msg: Message, graphs: &dyn Graphs) -> Vec<Effect> {
        self.on_input(Input::from(msg), graphs)
    }

    fn on_input(&mut self, input: Input, graphs: &dyn Graphs) -> Vec<Effect> {
        if self.closed {
            return Vec::new();
        }
        if self.rights.is_none() {
            return self.on_handshake(input);
        }
        let msg = match input {
            Input::Values {
                crdt,
                values,
                bytes,
            } => return self.on_values(&crdt, values, bytes),
            Input::Packs { crdt, packs, bytes } => return self.on_packs(&crdt, packs, bytes),
            Input::Commits {
                crdt,
                commits,
                signatures,
            } => return self.on_commits(&crdt, commits, signatures, graphs),
            Input::Other(msg) => msg,
        };
        match msg {
            Message::Hello { .. } | Message::Proof { .. } => self.close(CloseReason::Unexpected {
                kind: msg.kind(),
                detail: "the handshake is already complete",
            }),
            Message::Subscribe { crdts } => self.on_subscribe(crdts, graphs),
            Message::Subscribed { crdts } => self.on_subscribed(crdts),
            Message::Heads { crdt, heads } => self.on_heads(&crdt, heads, graphs),
            Message::Have { crdt, sample } => self.on_have(crdt, sample, graphs),
            Message::Known { crdt, ids } => self.on_known(&crdt, ids, graphs),
            Message::Error { code, message } => self.on_error(code, message),
            Message::Ping(n) => vec![Effect::Send(Message::Pong(n))],
            Message::Pong(_) => Vec::new(),
            Message::Digests {
                level,
                parent,
                digests,
            } => self.on_digests(level, parent, digests),
            // `Input::from` takes content out of `Other`; were one left, it is hashed there.
            content
            @ (Message::Values { .. } | Message::Packs { .. } | Message::Commits { .. }) => {
                self.on_input(Input::from(content), graphs)
            }
        }
    }

    /// Our state of `crdt` changed (a local commit, or a batch applied from another
    /// connection): send the peer what it lacks, if anything.
    pub fn on_local_change(&mut self, crdt: &CrdtKey, graphs: &dyn Graphs) -> Vec<Effect> {
        if self.closed || self.rights.is_none() {
            return Vec::new();
        }
        self.note_unshared_change(crdt);
        self.send_delta(crdt, graphs)
    }

    /// The oldest outstanding `Apply` of `crdt` is durable.
    pub fn on_applied(&mut self, crdt: &CrdtKey, graphs: &dyn Graphs) -> Vec<Effect> {
        let Some(state) = self.shared.get_mut(crdt) else {
            return Vec::new();
        };
        if let Some(ids) = state.inflight.pop_front() {
            for id in ids {
                state.inflight_ids.remove(&id);
            }
        }
        if self.closed || !state.inflight.is_empty() {
            return Vec::new();
        }
        match state.deferred_heads.take() {
            Some(heads) => self.on_heads(crdt, heads, graphs),
            None => Vec::new(),
        }
    }

    /// The driver could not store an `Apply` of `crdt`: later batches depend on it, so close.
    pub fn on_apply_failed(&mut self, crdt: &CrdtKey, reason: String) -> Vec<Effect> {
        self.close(CloseReason::ApplyFailed {
            crdt: crdt.clone(),
            reason,
        })
    }

    pub(super) fn close(&mut self, reason: CloseReason) -> Vec<Effect> {
        if self.closed {
            return Vec::new();
        }
        self.closed = true;
        let mut out = Vec::new();
        if let Some(reply) = reason.reply() {
            out.push(Effect::Send(reply));
        }
        out.push(Effect::Close { reason });
        out
    }

    fn on_subscribe(&mut self, mut crdts: Vec<CrdtKey>, graphs: &dyn Graphs) -> Vec<Effect> {
        // Only replicas this would create count: sharing what we hold costs nothing here.
        let new: BTreeSet<CrdtKey> = crdts
            .iter()
            .filter(|c| !self.shared.contains_key(*c) && graphs.graph(c).is_none())
            .cloned()
            .collect();
        let mut out = match self.within_limit(&mut crdts, new) {
            Ok(out) => out,
            Err(closed) => return closed,
        };
        let rights = self.granted();
        let mut heads = Vec::new();
        for crdt in &crdts {
            if !rights.read {
                out.extend(self.forbid(crdt, Request::Subscribe));
                // A peer that may write still shares the CDVCS: to send us its commits.
                if !rights.write {
                    continue;
                }
            }
            if graphs.graph(crdt).is_none() {
                out.push(Effect::EnsureReplica(crdt.clone()));
            }
            if !self.shared.contains_key(crdt) {
                self.shared.insert(crdt.clone(), Shared::default());
                // Our own subscription already carried our heads.
                if !self.requested.contains(crdt) {
                    heads.push(self.heads_message(crdt, graphs));
                }
            }
        }
        // Our `Heads` for each newly shared CRDT is the acknowledgement (no `Subscribed`: it
        // would only repeat the keys, and a reconnect pays for every byte).
        out.extend(heads.into_iter().map(Effect::Send));
        out
    }

    /// `Subscribed` (sent by no peer of this version) shares what we asked for; our heads
    /// went out with the request.
    fn on_subscribed(&mut self, crdts: Vec<CrdtKey>) -> Vec<Effect> {
        for crdt in crdts {
            // Acknowledgements for what we never asked for are ignored.
            if self.requested.contains(&crdt) && !self.shared.contains_key(&crdt) {
                self.shared.insert(crdt, Shared::default());
            }
        }
        Vec::new()
    }

    pub(super) fn heads_message(&self, crdt: &CrdtKey, graphs: &dyn Graphs) -> Message {
        Message::Heads {
            crdt: crdt.clone(),
            heads: with_graph(crdt, graphs, |g| g.heads()),
        }
    }

    /// The peer holds `heads`. If we hold them all we know exactly what it lacks; otherwise
    /// it holds something we lack and we negotiate to learn what of ours it holds.
    fn on_heads(&mut self, crdt: &CrdtKey, heads: Vec<Id>, graphs: &dyn Graphs) -> Vec<Effect> {
        // The peer's first `Heads` of a CRDT is its subscription, checked exactly like a
        // `Subscribe` (read right, else `Forbidden`; replica creation; the subscription
        // limit); we answer with ours unless our own subscription already carried them.
        // Then its heads are handled, if the CRDT is now shared.
        if !self.shared.contains_key(crdt) {
            let mut out = self.on_subscribe(vec![crdt.clone()], graphs);
            if !self.closed && self.shared.contains_key(crdt) {
                out.extend(self.on_heads(crdt, heads, graphs));
            }
            return out;
        }
        let peer = self.peer;
        let limits = self.config.limits;
        let may_read = self.granted().read;
        let Some(state) = self.shared.get_mut(crdt) else {
            return Vec::new();
        };
        if !state.inflight.is_empty() {
            state.deferred_heads = Some(heads);
            return Vec::new();
        }
        let known: Vec<Id> = with_graph(crdt, graphs, |g| {
            heads.iter().filter(|id| g.contains(id)).copied().collect()
        });
        state.learn(&known, limits.max_frontier);
        let mut out = Vec::new();
        if known.len() == heads.len() {
            state.negotiation = None;
            if let Some(peer) = peer
                && state.saved_hint != heads
            {
                state.saved_hint = heads.clone();
                out.push(Effect::SaveKnownHeads {
                    peer,
                    crdt: crdt.clone(),
                    heads,
                });
            }
            out.extend(self.send_delta(crdt, graphs));
            return out;
        }
        // Negotiating finds what of ours the peer lacks: pointless when it may not read.
        if state.negotiation.is_some() || !may_read {
            return out;
        }
        let hint: Vec<Id> = match peer {
            Some(p) => graphs.known_heads_hint(&p, crdt),
            None => Vec::new(),
        };
        let frontier: Vec<Id> = state.frontier.iter().copied().collect();
        let (negotiation, sample) = with_graph(crdt, graphs, |g| {
            Negotiation::start(g, &hint, &frontier, &limits)
        });
        state.negotiation = Some(negotiation);
        out.push(Effect::Send(Message::Have {
            crdt: crdt.clone(),
            sample,
        }));
        out
    }

    fn on_have(&mut self, crdt: CrdtKey, sample: Vec<Id>, graphs: &dyn Graphs) -> Vec<Effect> {
        let Some(state) = self.shared.get(&crdt) else {
            return Vec::new();
        };
        let ids = with_graph(&crdt, graphs, |g| {
            let have = Overlay {
                graph: g,
                inflight: &state.inflight_ids,
            };
            sample.into_iter().filter(|id| have.contains(id)).collect()
        });
        vec![Effect::Send(Message::Known { crdt, ids })]
    }

    fn on_known(&mut self, crdt: &CrdtKey, ids: Vec<Id>, graphs: &dyn Graphs) -> Vec<Effect> {
        let limits = self.config.limits;
        let Some(state) = self.shared.get_mut(crdt) else {
            return Vec::new();
        };
        let Some(mut negotiation) = state.negotiation.take() else {
            return Vec::new();
        };
        let next = with_graph(crdt, graphs, |g| negotiation.answer(g, &ids, &limits));
        state.learn(negotiation.known(), limits.max_frontier);
        if let Some(sample) = next {
            state.negotiation = Some(negotiation);
            return vec![Effect::Send(Message::Have {
                crdt: crdt.clone(),
                sample,
            })];
        }
        self.send_delta(crdt, graphs)
    }

    /// Sends `commits_between(frontier, our heads)` unless empty or still negotiating.
    fn send_delta(&mut self, crdt: &CrdtKey, graphs: &dyn Graphs) -> Vec<Effect> {
        if !self.granted().read {
            return Vec::new();
        }
        let max_frontier = self.config.limits.max_frontier;
        let Some(state) = self.shared.get_mut(crdt) else {
            return Vec::new();
        };
        if state.negotiation.is_some() {
            return Vec::new();
        }
        let frontier: Vec<Id> = state.frontier.iter().copied().collect();
        let (ids, heads) = with_graph(crdt, graphs, |g| {
            let heads = g.heads();
            (g.commits_between(&frontier, &heads), heads)
        });
        if ids.is_empty() {
            return Vec::new();
        }
        state.learn(&heads, max_frontier);
        vec![Effect::SendCommits {
            crdt: crdt.clone(),
            ids,
            heads,
        }]
    }
}

impl Shared {
    /// Adds ids the peer holds to the bounded frontier.
    pub(super) fn learn(&mut self, ids: &[Id], max: usize) {
        for id in ids {
            if !self.frontier.contains(id) {
                self.frontier.push_back(*id);
            }
        }
        while self.frontier.len() > max {
            self.frontier.pop_front();
        }
    }
}
