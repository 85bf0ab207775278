//! The browser peer's connection logic, free of the browser: it feeds websocket frames to the
//! core's [`SyncSession`] (the same state machine a node's connection actor drives) and turns
//! its effects into frames to send, records to keep, and events for the page. The JavaScript
//! side owns the websocket and IndexedDB; see `lib.rs` for the contract.
//!
//! The browser only reads: it subscribes to one CDVCS and never sends commits (a peer that
//! lacks some of ours is not served). Batches are kept in IndexedDB before they are applied.

use std::collections::VecDeque;

use replikativ_core::crdt::CrdtKey;
use replikativ_core::identity::Keypair;
use replikativ_core::protocol::{Codec, Message, Received};
use replikativ_core::sync::{
    Effect, GraphView, Graphs, Handshake, Rights, Role, SessionConfig, SyncLimits, SyncSession,
};

use crate::replica::{Pending, Replica};

/// What the page must do after one call.
#[derive(Debug, Default)]
pub struct Output {
    /// Frames to send, in order.
    pub send: Vec<Vec<u8>>,
    /// Records to keep, each with its ticket: keep them in this order, then call
    /// [`Driver::stored`] with each ticket.
    pub store: Vec<(u32, Vec<u8>)>,
    /// Messages for the page (refusals, errors).
    pub notes: Vec<String>,
    /// Transactions applied by this call (durable in IndexedDB), in order.
    pub applied: Vec<crate::replica::Applied>,
    /// The session ended: close the websocket, saying this.
    pub close: Option<String>,
}

/// The replica and, while connected, its session.
pub struct Driver {
    keypair: Keypair,
    replica: Replica,
    session: Option<SyncSession>,
    codec: Codec,
    pending: VecDeque<(u32, Pending)>,
    next_ticket: u32,
    peer_heads: Vec<replikativ_core::id::Id>,
    received_bytes: u64,
}

/// The session's view: our one CDVCS.
struct View<'a>(&'a Replica);

impl Graphs for View<'_> {
    fn graph(&self, crdt: &CrdtKey) -> Option<&dyn GraphView> {
        (crdt == self.0.key()).then_some(self.0.graph() as &dyn GraphView)
    }
}

impl Driver {
    /// A peer with key `keypair` holding `replica`.
    pub fn new(keypair: Keypair, replica: Replica) -> Driver {
        Driver {
            keypair,
            replica,
            session: None,
            codec: Codec::default(),
            pending: VecDeque::new(),
            next_ticket: 0,
            peer_heads: Vec::new(),
            received_bytes: 0,
        }
    }

    /// The replica.
    pub fn replica(&self) -> &Replica {
        &self.replica
    }

    /// The replica, to restore records into before connecting.
    pub fn replica_mut(&mut self) -> &mut Replica {
        &mut self.replica
    }

    /// Our key pair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// Whether a session is authenticated and open.
    pub fn connected(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.is_closed() && s.rights().is_some())
    }

    /// Whether our heads equal the peer's last announced heads.
    pub fn caught_up(&self) -> bool {
        self.connected() && self.pending.is_empty() && {
            let ours: Vec<_> = self.replica.graph().heads().iter().copied().collect();
            let mut theirs = self.peer_heads.clone();
            theirs.sort_unstable();
            ours == theirs
        }
    }

    /// Websocket payload bytes received since this driver was made.
    pub fn received_bytes(&self) -> u64 {
        self.received_bytes
    }

    /// A websocket opened: start a new session (`nonce`: 32 fresh random bytes).
    pub fn connect(&mut self, nonce: [u8; 32]) -> Output {
        // Batches checked but not yet kept belong to the old session: they are still kept
        // and applied when their tickets come back; the new session starts from our heads.
        let mut session = SyncSession::new(SessionConfig {
            handshake: Handshake::new(self.keypair.clone(), Role::Dialler, nonce, None),
            subscriptions: vec![self.replica.key().clone()],
            limits: SyncLimits::default(),
        });
        let effects = session.start();
        self.session = Some(session);
        self.peer_heads.clear();
        self.run(effects)
    }

    /// The websocket closed.
    pub fn disconnected(&mut self) {
        self.session = None;
    }

    /// A binary frame arrived.
    pub fn receive(&mut self, frame: &[u8]) -> Output {
        self.received_bytes += frame.len() as u64;
        let view = View(&self.replica);
        let Some(session) = self.session.as_mut() else {
            return Output::default();
        };
        let effects = match self.codec.receive(frame) {
            Ok(received) => {
                if let Received::Other(Message::Heads { crdt, heads }) = &received
                    && crdt == view.0.key()
                {
                    self.peer_heads = heads.clone();
                }
                session.on_received(received, &view)
            }
            Err(e) => session.on_decode_error(e),
        };
        self.run(effects)
    }

    /// The record of `ticket` is kept: apply it and tell the session.
    pub fn stored(&mut self, ticket: u32) -> Output {
        let Some(at) = self.pending.iter().position(|(t, _)| *t == ticket) else {
            return Output::default();
        };
        // Records are kept in order: everything before this ticket is kept too.
        let (mut applied, mut txs) = (0, Vec::new());
        let mut failed = None;
        for (_, pending) in self.pending.drain(..=at) {
            match self.replica.apply(pending) {
                Ok(done) => txs.extend(done),
                Err(e) => failed = Some(e),
            }
            applied += 1;
        }
        if let Some(e) = failed {
            // Cannot happen for a batch the session verified; if it does, the session ends
            // and a reconnect starts again from our heads.
            let key = self.replica.key().clone();
            let effects = match self.session.as_mut() {
                Some(s) => s.on_apply_failed(&key, e.to_string()),
                None => Vec::new(),
            };
            let mut out = self.run(effects);
            out.notes.push(format!("a kept batch did not apply: {e}"));
            out.applied = txs;
            return out;
        }
        let key = self.replica.key().clone();
        let mut effects = Vec::new();
        if let Some(session) = self.session.as_mut() {
            for _ in 0..applied {
                effects.extend(session.on_applied(&key, &View(&self.replica)));
            }
        }
        let mut out = self.run(effects);
        out.applied = txs;
        out
    }

    /// Keeping the record of `ticket` failed: nothing of it or after it is applied, and the
    /// session ends (a reconnect fetches it again).
    pub fn store_failed(&mut self, ticket: u32, reason: &str) -> Output {
        self.pending.retain(|(t, _)| *t < ticket);
        let key = self.replica.key().clone();
        let effects = match self.session.as_mut() {
            Some(s) => s.on_apply_failed(&key, format!("keeping it in IndexedDB: {reason}")),
            None => Vec::new(),
        };
        self.run(effects)
    }

    fn run(&mut self, effects: Vec<Effect>) -> Output {
        let mut out = Output::default();
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let more = self.effect(effect, &mut out);
            queue.extend(more);
        }
        out
    }

    fn effect(&mut self, effect: Effect, out: &mut Output) -> Vec<Effect> {
        let key = self.replica.key().clone();
        let Some(session) = self.session.as_mut() else {
            return Vec::new();
        };
        match effect {
            Effect::Send(msg) => match self.codec.encode(&msg) {
                Ok(frame) => out.send.push(frame),
                Err(e) => out.notes.push(format!("cannot encode {}: {e}", msg.kind())),
            },
            // The node we dialled may send us commits and have ours (we send none).
            Effect::Authenticated { .. } => {
                return session.authorize(Rights::ALL, &View(&self.replica));
            }
            Effect::Apply { crdt, batch } => {
                if crdt != key {
                    return session.on_apply_failed(&crdt, "not subscribed here".into());
                }
                match self.replica.check(batch) {
                    Ok(pending) => {
                        let ticket = self.next_ticket;
                        self.next_ticket = self.next_ticket.wrapping_add(1);
                        out.store.push((ticket, pending.record.clone()));
                        self.pending.push_back((ticket, pending));
                    }
                    Err(e) => {
                        out.notes.push(format!("refused a batch: {e}"));
                        return session.on_apply_failed(&crdt, e.to_string());
                    }
                }
            }
            Effect::Recheck(crdt) => {
                return session.on_local_change(&crdt, &View(&self.replica));
            }
            Effect::PeerHeads { crdt, heads } if crdt == key => self.peer_heads = heads,
            Effect::Refused { crdt, request, .. } => out
                .notes
                .push(format!("refused the node's {} of {crdt}", request.right())),
            Effect::RefusedByPeer { message } => out.notes.push(message),
            Effect::Declined { max } => out.notes.push(format!(
                "the node offers more than {max} new CDVCSs; took {max}"
            )),
            Effect::Reject { id, reason, .. } => {
                out.notes.push(format!("refused {id}: {reason}"));
            }
            Effect::Close { reason } => out.close = Some(reason.to_string()),
            // A read-only peer: it serves nothing, keeps no per-peer hints (a reconnect
            // starts from its heads, which costs one `Heads` each way), and holds one CDVCS.
            Effect::SendCommits { .. }
            | Effect::SaveKnownHeads { .. }
            | Effect::EnsureReplica(_)
            | Effect::PeerHeads { .. } => {}
        }
        Vec::new()
    }
}
