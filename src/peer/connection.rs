//! `ConnectionActor`: speaks the replication protocol over one websocket, on either side.
//!
//! It decodes frames with the bounded codec (which hashes received content once), feeds them
//! to its pure [`SyncSession`] with the state of only the CRDTs each frame names, and carries
//! out the effects in order: sends, durable applies through the replica actors, replica
//! creation, persisted per-peer hints. Outgoing catch-ups go through the pure [`Flow`]: it
//! decides batches, pings, the window of [`WINDOW`] unacknowledged batches and when a peer
//! that stopped reading for [`SLOW_PEER_TIMEOUT`] is stalled; this actor loads commits from
//! the store for it, sends what it returns and closes a stalled peer with its reason.
//!
//! Every connection starts with the authentication handshake, bounded by
//! [`HANDSHAKE_TIMEOUT`]; the proved key gets the rights the node's policy gives it, also
//! when the policy changes on a live connection (module `admission`).
//!
//! Server side: a `Temporary` child of the connections pool (a dropped client is gone).
//! Client side ([`Mode::Dial`]): a `Permanent` connector that redials forever with capped,
//! jittered backoff inside the actor (module `dial`), so a peer that is down never exhausts
//! a supervisor's restart intensity.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix::prelude::*;
use replikativ_actors::ChildBackoff;

use super::client_socket::dial_policy;
use super::graphs::with_graphs;
use super::outgoing;
use super::socket::{Inbound, Outgoing};
use super::tls::ChannelBinding;
use crate::crdt::CrdtKey;
use crate::peer::context::PeerContext;
use crate::protocol::{Codec, Message, Received};
use crate::replica::Watched;
use crate::replicas::NodeEvent;
use crate::store::cdvcs::changed_hint;
use crate::sync::{
    Effect, Flow, FlowLimits, Handshake, Role, SessionConfig, SyncLimits, SyncSession,
};

mod admission;
mod apply;
mod dial;
mod lag;
mod receive;

pub use super::outgoing::load_outgoing;
pub use crate::sync::flow::{SLOW_PEER_TIMEOUT, WINDOW};
pub use apply::{APPLY_BYTES, APPLY_WINDOW};

/// A connection whose peer has not completed the handshake within this long is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which side this connection is on.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Accepted by our server; frames go out through this socket.
    Accepted(Recipient<Outgoing>),
    /// Dialled by us; redialled forever after a disconnect.
    Dial(String),
}

/// Why a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The session closed with a reason (protocol violation, verification failure, ...).
    #[error("connection {remote}: {reason}")]
    Closed {
        /// The peer's address or URL.
        remote: String,
        /// Why.
        reason: String,
    },
}

/// The actor.
pub struct ConnectionActor {
    id: u64,
    node: Arc<PeerContext>,
    mode: Mode,
    remote: String,
    out: Option<Recipient<Outgoing>>,
    session: SyncSession,
    codec: Codec,
    effects: VecDeque<Effect>,
    busy: bool,
    flow: Flow,
    failures: u32,
    dial_backoff: ChildBackoff,
    /// The TLS channel binding of the current socket (`None` over plain `ws://`).
    pub(crate) channel_binding: Option<ChannelBinding>,
    /// Counts sessions on this actor, so a timer outliving its session does nothing.
    generation: u64,
    /// The admitted session as operators see it (bytes counted per connection).
    live: Option<Arc<crate::peer::live::LiveConnection>>,
    applies: apply::Applies,
}

impl ConnectionActor {
    /// A connection for `node`; `remote` names the peer in logs.
    pub fn new(node: Arc<PeerContext>, mode: Mode, remote: String) -> ConnectionActor {
        let out = match &mode {
            Mode::Accepted(out) => Some(out.clone()),
            Mode::Dial(_) => None,
        };
        // Replaced by `open_session` (which lists the store's CRDTs) before any use.
        let role = match mode {
            Mode::Accepted(_) => Role::Acceptor,
            Mode::Dial(_) => Role::Dialler,
        };
        let session = SyncSession::new(SessionConfig {
            handshake: Handshake::new(node.identity.clone(), role, [0; 32], None),
            subscriptions: Vec::new(),
            limits: SyncLimits::default(),
        });
        ConnectionActor {
            id: node.next_connection_id(),
            node,
            mode,
            remote,
            out,
            session,
            codec: Codec::default(),
            effects: VecDeque::new(),
            busy: false,
            flow: Flow::new(FlowLimits::default()),
            failures: 0,
            dial_backoff: ChildBackoff::new(dial_policy()),
            channel_binding: None,
            generation: 0,
            live: None,
            applies: Default::default(),
        }
    }

    /// A session with a fresh nonce and the socket's TLS channel binding in its handshake.
    /// What it shares is offered once the peer is authorized (module `admission`); a mirror's
    /// dialled session takes every CRDT the peer offers, however many.
    fn fresh_session(
        node: &PeerContext,
        role: Role,
        channel_binding: Option<[u8; 32]>,
    ) -> SyncSession {
        // The thread-local generator is a CSPRNG seeded from the operating system.
        let nonce: [u8; 32] = rand::random();
        let settings = node.subscriptions();
        let limits = SyncLimits {
            max_subscriptions: match role == Role::Dialler && settings.mirror {
                true => usize::MAX,
                false => settings.max,
            },
            ..SyncLimits::default()
        };
        SyncSession::new(SessionConfig {
            handshake: Handshake::new(node.identity.clone(), role, nonce, channel_binding),
            subscriptions: Vec::new(),
            limits,
        })
    }

    fn is_dialer(&self) -> bool {
        matches!(self.mode, Mode::Dial(_))
    }

    fn role(&self) -> Role {
        match self.mode {
            Mode::Accepted(_) => Role::Acceptor,
            Mode::Dial(_) => Role::Dialler,
        }
    }

    fn send(&mut self, msg: &Message) {
        let Some(out) = &self.out else { return };
        match self.codec.encode(msg) {
            Ok(bytes) => {
                self.node
                    .metrics
                    .bytes_out
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if let Some(live) = &self.live
                    && self.node.metrics_on()
                {
                    live.sent(bytes.len());
                }
                out.do_send(Outgoing::Frame(bytes));
            }
            Err(e) => tracing::error!(remote = %self.remote, "cannot encode {}: {e}", msg.kind()),
        }
    }

    /// Starts (or restarts) the session on a fresh socket.
    fn open_session(&mut self, ctx: &mut Context<Self>) {
        let binding = self.channel_binding.map(|b| b.0);
        self.session = Self::fresh_session(&self.node, self.role(), binding);
        self.bound_subscriptions();
        self.effects.clear();
        self.busy = false;
        self.flow = Flow::new(FlowLimits {
            stall_timeout: self.node.slow_peer_timeout,
            ..FlowLimits::default()
        });
        self.generation += 1;
        self.expire_handshake(self.generation, ctx);
        let effects = self.session.start();
        self.run(effects, ctx);
    }

    /// Queues `effects` and carries them out. The peer's proved key is admitted (or refused)
    /// at once, before any further input reaches the session.
    fn run(&mut self, effects: Vec<Effect>, ctx: &mut Context<Self>) {
        for effect in effects {
            match effect {
                Effect::Authenticated { peer } => {
                    let more = self.authenticated(peer);
                    self.effects.extend(more);
                }
                other => self.effects.push_back(other),
            }
        }
        self.drive(ctx);
    }

    /// Runs `f` with read views of the replicas of `crdts` only: a frame touches only the
    /// CRDTs it names (a replica not started yet is seen as its root by the session).
    fn graphs_call<R>(
        &mut self,
        crdts: &[CrdtKey],
        f: impl FnOnce(&mut SyncSession, &dyn crate::sync::Graphs) -> R,
    ) -> R {
        let states: Vec<_> = crdts
            .iter()
            .filter_map(|k| Some((k.clone(), self.node.replicas.get(k)?.state())))
            .collect();
        let store = self.node.store.clone();
        let session = &mut self.session;
        with_graphs(&states, &store, |g| f(session, g))
    }

    /// Our state of `crdt` changed: the session sends the peer what it lacks.
    fn local_change(&mut self, crdt: &CrdtKey) -> Vec<Effect> {
        self.graphs_call(std::slice::from_ref(crdt), |s, g| {
            s.on_local_change(crdt, g)
        })
    }

    /// Carries out queued effects in order; an async one pauses the queue until it is done.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        let window = self.node.subscriptions().apply_window;
        while !self.busy && !self.applies.full(window) {
            let Some(effect) = self.effects.pop_front() else {
                break;
            };
            match effect {
                Effect::Send(msg) => self.send(&msg),
                Effect::SendCommits { crdt, ids, heads } => {
                    self.flow.push(crdt, ids, heads);
                    self.pump();
                }
                Effect::Apply { crdt, batch } => self.apply(crdt, batch, ctx),
                Effect::EnsureReplica(crdt) => self.create(crdt, ctx),
                Effect::Recheck(crdt) => {
                    let more = self.local_change(&crdt);
                    for e in more.into_iter().rev() {
                        self.effects.push_front(e);
                    }
                }
                Effect::PeerHeads { crdt, heads } => {
                    self.node.note_remote_heads(self.id, &crdt, &heads);
                }
                Effect::SaveKnownHeads { peer, crdt, heads } => {
                    if let Some(batch) = changed_hint(&self.node.store, &peer, &crdt, &heads) {
                        self.node.write_in_background(batch);
                    }
                }
                Effect::Reject {
                    peer,
                    crdt,
                    id,
                    reason,
                } => {
                    self.node.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        remote = %self.remote,
                        peer = ?peer,
                        crdt = ?crdt.map(|c| c.to_string()),
                        id = %id,
                        "refused a batch: {}",
                        replikativ_actors::error_chain(&reason)
                    );
                }
                Effect::Refused {
                    peer,
                    crdt,
                    request,
                } => {
                    tracing::warn!(remote = %self.remote, %peer, crdt = %crdt, "refused the peer's {request:?}: it lacks the {} right on this node", request.right());
                }
                Effect::Declined { max } => {
                    tracing::warn!(remote = %self.remote, "the peer offers more CDVCSs new to this node than --max-subscriptions allows ({max}): the rest are not taken; to take every CDVCS of the peer, run with --mirror, or raise --max-subscriptions");
                }
                Effect::RefusedByPeer { message } => {
                    tracing::warn!(remote = %self.remote, peer = ?self.session.peer(), "the peer refused: {message}");
                }
                // Handled in `run`, before it is queued.
                Effect::Authenticated { .. } => {}
                Effect::Close { reason } => {
                    let why = replikativ_actors::error_chain(&reason);
                    tracing::warn!(remote = %self.remote, peer = ?self.session.peer(), "closing: {why}");
                    if reason.is_refusal() && self.is_dialer() {
                        self.note_refusal(why.clone(), ctx);
                    }
                    if let Some(out) = self.out.take() {
                        out.do_send(Outgoing::Close(why.clone()));
                    }
                    self.effects.clear();
                    self.lost(why, ctx);
                    return;
                }
            }
        }
    }

    /// Sends queued catch-up batches while the flow's window allows.
    fn pump(&mut self) {
        let frames = outgoing::batches(&mut self.flow, &self.node.store, &self.remote);
        for msg in &frames {
            self.send(msg);
        }
    }
}

impl Actor for ConnectionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Bounded mailbox: a socket waits before handing us more frames.
        ctx.set_mailbox_capacity(16);
        ctx.add_stream(self.node.events_stream());
        ctx.add_stream(self.node.trust.changes());
        let timeout = self.node.slow_peer_timeout;
        let check = (timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        ctx.run_interval(check, move |act, ctx| {
            if act.out.is_none() {
                return;
            }
            if let Some(stalled) = act.flow.stalled(Instant::now()) {
                let why = stalled.to_string();
                if let Some(out) = act.out.take() {
                    out.do_send(Outgoing::Close(why.clone()));
                }
                act.lost(why, ctx);
            }
        });
        ctx.run_interval(lag::EVERY, |act, _| act.note_lag());
        if self.is_dialer() {
            self.redial(ctx);
        } else {
            self.open_session(ctx);
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.node.forget_remote(self.id);
        if let Some(out) = self.out.take() {
            out.do_send(Outgoing::Close("node is stopping".into()));
        }
    }
}

impl Handler<Inbound> for ConnectionActor {
    type Result = ();

    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        match msg {
            Inbound::Frame(bytes) => {
                self.node
                    .metrics
                    .bytes_in
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                if let Some(live) = &self.live
                    && self.node.metrics_on()
                {
                    live.received(bytes.len());
                }
                let effects = match self.codec.receive(&bytes) {
                    Ok(Received::Other(Message::Pong(seq))) => {
                        if self.flow.on_pong(seq, Instant::now()) {
                            self.pump();
                        }
                        Vec::new()
                    }
                    Ok(msg) => match self.start_then_receive(msg, ctx) {
                        Some(msg) => self.received(msg),
                        None => return,
                    },
                    Err(e) => self.session.on_decode_error(e),
                };
                self.run(effects, ctx);
            }
            Inbound::TextFrame => {
                let effects = self
                    .session
                    .on_decode_error(crate::protocol::ProtocolError::TextFrame { len: 0 });
                self.run(effects, ctx);
            }
            Inbound::Closed(why) => {
                if self.out.is_some() {
                    self.lost(why, ctx);
                }
            }
        }
    }
}

impl StreamHandler<NodeEvent> for ConnectionActor {
    fn handle(&mut self, event: NodeEvent, ctx: &mut Context<Self>) {
        if self.out.is_none() || self.session.is_closed() {
            return;
        }
        let effects = match event {
            NodeEvent::Replica(Watched::Changed(change)) => {
                if change.origin == Some(self.id) {
                    return;
                }
                self.local_change(&change.key)
            }
            NodeEvent::Replica(Watched::Lagged(_)) => {
                // Replicas not started have not changed.
                let keys: Vec<CrdtKey> = self
                    .session
                    .shared()
                    .filter(|k| self.node.replicas.running(k))
                    .cloned()
                    .collect();
                keys.iter().flat_map(|k| self.local_change(k)).collect()
            }
            NodeEvent::Created(key) => self.graphs_call(std::slice::from_ref(&key), |s, g| {
                s.subscribe(vec![key.clone()], g)
            }),
        };
        self.run(effects, ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}
