//! A deterministic simulated network in the manner of raft-rs: replicas joined by links that
//! can drop, duplicate, reorder, cut and heal. Each link end runs a `SyncSession` and sends
//! its catch-ups through a `Flow` (window, pings, batches, stall detection) on a simulated
//! clock; frames travel encoded through the real codec and are counted. An end can be paused
//! (a peer that stops reading). Every session input sees only the CRDTs its frame names
//! ([`Scoped`]), so every run checks that a frame touches only its own CRDT.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replikativ::Id;
use replikativ::crdt::CrdtKey;
use replikativ::identity::PublicKey;
use replikativ::protocol::{Codec, Message, Received};
use replikativ::sync::{
    Effect, Flow, FlowLimits, FlowOutput, GraphView, Graphs, Handshake, Offer, Rights, Role,
    SessionConfig, SyncLimits, SyncSession,
};

use super::dag::Replica;

/// A replica as one session input may see it: only the CRDTs `crdts`; asking for another
/// panics.
pub struct Scoped<'a> {
    pub replica: &'a Replica,
    pub crdts: &'a [CrdtKey],
}

impl Scoped<'_> {
    fn check(&self, crdt: &CrdtKey) {
        assert!(
            self.crdts.contains(crdt),
            "an input about {:?} read the state of {crdt}",
            self.crdts
        );
    }
}

impl Graphs for Scoped<'_> {
    fn graph(&self, crdt: &CrdtKey) -> Option<&dyn GraphView> {
        self.check(crdt);
        self.replica.graph(crdt)
    }
    fn known_heads_hint(&self, peer: &PublicKey, crdt: &CrdtKey) -> Vec<Id> {
        self.check(crdt);
        self.replica.known_heads_hint(peer, crdt)
    }
}

/// Fault probabilities per delivery, in percent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    pub drop: u32,
    pub duplicate: u32,
    pub reorder: u32,
}

pub struct Link {
    pub ends: [usize; 2],
    pub sessions: Option<[SyncSession; 2]>,
    pub flows: Option<[Flow; 2]>,
    /// Frames in flight towards end 0 and end 1.
    pub queues: [VecDeque<Vec<u8>>; 2],
    /// Ends that do not read (their frames stay queued).
    pub paused: [bool; 2],
}

pub struct Sim {
    pub replicas: Vec<Replica>,
    pub links: Vec<Link>,
    pub rng: StdRng,
    pub faults: Faults,
    pub codec: Codec,
    pub flow: FlowLimits,
    pub limits: SyncLimits,
    /// The simulated clock, advanced only by [`Sim::advance`].
    pub now: Instant,
    pub bytes: u64,
    pub frames: u64,
    /// When set, the kind of every frame sent, with its link and sending end, in order.
    pub log: Option<Vec<(usize, usize, &'static str)>>,
    /// The most batches any flow had unacknowledged.
    pub max_unacked: u64,
    pub rejects: Vec<String>,
    pub closes: Vec<String>,
    /// The rights each end of a link gives the other (end 0 dials): read and write unless
    /// a test says otherwise.
    pub rights: [Rights; 2],
    /// Requests refused for a missing right, on either side.
    pub refusals: Vec<String>,
    /// Sessions share by digests (protocol 5): each end offers every CRDT it holds, when
    /// the other may read there.
    pub digests: bool,
    /// `Recheck` effects carried out (changes made while a CRDT was offered, not shared).
    pub rechecks: u64,
}

impl Sim {
    pub fn new(replicas: Vec<Replica>, edges: &[(usize, usize)], seed: u64) -> Sim {
        let links = edges
            .iter()
            .map(|&(a, b)| Link {
                ends: [a, b],
                sessions: None,
                flows: None,
                queues: [VecDeque::new(), VecDeque::new()],
                paused: [false, false],
            })
            .collect();
        Sim {
            replicas,
            links,
            rng: StdRng::seed_from_u64(seed),
            faults: Faults::default(),
            codec: Codec::default(),
            flow: FlowLimits::default(),
            limits: SyncLimits::default(),
            now: Instant::now(),
            bytes: 0,
            frames: 0,
            log: None,
            max_unacked: 0,
            rejects: Vec::new(),
            closes: Vec::new(),
            rights: [Rights::ALL; 2],
            refusals: Vec::new(),
            digests: false,
            rechecks: 0,
        }
    }

    /// Brings link `l` up with fresh sessions (a reconnect).
    pub fn heal(&mut self, l: usize) {
        self.cut(l);
        let roles = [Role::Dialler, Role::Acceptor];
        let mut sessions = [0, 1].map(|side| {
            let r = self.links[l].ends[side];
            let nonce: [u8; 32] = self.rng.random();
            SyncSession::new(SessionConfig {
                handshake: Handshake::new(self.replicas[r].key(), roles[side], nonce, None),
                subscriptions: self.replicas[r].subscriptions.clone(),
                limits: self.limits,
            })
        });
        let starts = [sessions[0].start(), sessions[1].start()];
        self.links[l].sessions = Some(sessions);
        self.links[l].flows = Some([Flow::new(self.flow), Flow::new(self.flow)]);
        for (side, effects) in starts.into_iter().enumerate() {
            self.run_effects(l, side, effects);
        }
    }

    pub fn heal_all(&mut self) {
        for l in 0..self.links.len() {
            self.heal(l);
        }
    }

    /// Takes link `l` down; frames in flight are lost.
    pub fn cut(&mut self, l: usize) {
        let link = &mut self.links[l];
        link.sessions = None;
        link.flows = None;
        link.queues.iter_mut().for_each(VecDeque::clear);
    }

    /// Whether end `side` of link `l` reads its frames.
    pub fn pause(&mut self, l: usize, side: usize, paused: bool) {
        self.links[l].paused[side] = paused;
    }

    /// Advances the simulated clock.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Closes every link on which a flow finds its peer stalled, as a connection's timer
    /// would.
    pub fn check_stalls(&mut self) {
        for l in 0..self.links.len() {
            for side in 0..2 {
                let Some(flows) = self.links[l].flows.as_ref() else {
                    continue;
                };
                if let Some(stalled) = flows[side].stalled(self.now) {
                    let r = self.links[l].ends[side];
                    self.closes.push(format!("replica {r}: {stalled}"));
                    self.cut(l);
                }
            }
        }
    }

    /// The flow of end `side` of link `l`, while the link is up.
    pub fn flow(&self, l: usize, side: usize) -> &Flow {
        &self.links[l].flows.as_ref().expect("link is up")[side]
    }

    /// A local commit on replica `r`, announced to its sessions.
    pub fn local_commit(&mut self, r: usize, crdt: &CrdtKey, params: &[Vec<u8>], ts: i64) {
        self.replicas[r].commit(crdt, params, ts);
        self.changed(r, crdt, None);
    }

    /// Tells every session of replica `r` except `except` that `crdt` changed.
    fn changed(&mut self, r: usize, crdt: &CrdtKey, except: Option<(usize, usize)>) {
        for l in 0..self.links.len() {
            for side in 0..2 {
                if self.links[l].ends[side] != r || except == Some((l, side)) {
                    continue;
                }
                let scope = Scoped {
                    replica: &self.replicas[r],
                    crdts: std::slice::from_ref(crdt),
                };
                let Some(sessions) = self.links[l].sessions.as_mut() else {
                    continue;
                };
                let effects = sessions[side].on_local_change(crdt, &scope);
                self.run_effects(l, side, effects);
            }
        }
    }

    fn send(&mut self, l: usize, side: usize, msg: &Message) {
        let frame = self.codec.encode(msg).expect("own frames encode");
        self.bytes += frame.len() as u64;
        self.frames += 1;
        if let Some(log) = self.log.as_mut() {
            log.push((l, side, msg.kind()));
        }
        self.links[l].queues[1 - side].push_back(frame);
    }

    /// Sends what the flow of (`l`, `side`) allows, like a connection actor would.
    fn pump(&mut self, l: usize, side: usize) {
        let replica = &self.replicas[self.links[l].ends[side]];
        let Some(flows) = self.links[l].flows.as_mut() else {
            return;
        };
        let out = flows[side].pump(self.now, |crdt, id| replica.load_one(crdt, id));
        self.max_unacked = self.max_unacked.max(flows[side].unacked());
        for output in out {
            match output {
                FlowOutput::Send(msg) => self.send(l, side, &msg),
                other => panic!("the simulated sender failed: {other:?}"),
            }
        }
    }

    /// Carries out `effects` of the session at (`l`, `side`), like a connection actor would.
    pub fn run_effects(&mut self, l: usize, side: usize, effects: Vec<Effect>) {
        let r = self.links[l].ends[side];
        let mut work: VecDeque<Effect> = effects.into();
        while let Some(effect) = work.pop_front() {
            if self.links[l].sessions.is_none() {
                return;
            }
            match effect {
                Effect::Send(msg) => self.send(l, side, &msg),
                Effect::Authenticated { .. } => {
                    if let Some(sessions) = self.links[l].sessions.as_mut() {
                        let subscriptions = sessions[side].subscriptions().to_vec();
                        let scope = Scoped {
                            replica: &self.replicas[r],
                            crdts: &subscriptions,
                        };
                        let rights = self.rights[side];
                        if self.digests {
                            let offer = match rights.read {
                                true => {
                                    Offer::new(self.replicas[r].crdts.iter().map(|(k, d)| {
                                        (k.clone(), d.heads.iter().copied().collect())
                                    }))
                                }
                                false => Offer::default(),
                            };
                            work.extend(sessions[side].authorize_with_offer(rights, offer, &scope));
                        } else {
                            work.extend(sessions[side].authorize(rights, &scope));
                        }
                    }
                }
                Effect::Refused { crdt, request, .. } => {
                    self.refusals
                        .push(format!("replica {r}: {request:?} of {crdt}"));
                }
                Effect::Declined { max } => {
                    self.refusals
                        .push(format!("replica {r} declined offers beyond {max}"));
                }
                Effect::RefusedByPeer { message } => {
                    self.refusals
                        .push(format!("replica {r} was refused: {message}"));
                }
                Effect::SendCommits { crdt, ids, heads } => {
                    if let Some(flows) = self.links[l].flows.as_mut() {
                        flows[side].push(crdt, ids, heads);
                    }
                    self.pump(l, side);
                }
                Effect::Apply { crdt, batch } => {
                    let result = self.replicas[r].apply(&crdt, batch);
                    let scope = Scoped {
                        replica: &self.replicas[r],
                        crdts: std::slice::from_ref(&crdt),
                    };
                    let Some(sessions) = self.links[l].sessions.as_mut() else {
                        return;
                    };
                    let more = match result {
                        Ok(()) => sessions[side].on_applied(&crdt, &scope),
                        Err(reason) => sessions[side].on_apply_failed(&crdt, reason),
                    };
                    work.extend(more);
                    self.changed(r, &crdt, Some((l, side)));
                }
                Effect::EnsureReplica(crdt) => self.replicas[r].ensure(&crdt),
                Effect::PeerHeads { .. } => {}
                Effect::Recheck(crdt) => {
                    self.rechecks += 1;
                    let scope = Scoped {
                        replica: &self.replicas[r],
                        crdts: std::slice::from_ref(&crdt),
                    };
                    if let Some(sessions) = self.links[l].sessions.as_mut() {
                        work.extend(sessions[side].on_local_change(&crdt, &scope));
                    }
                }
                Effect::SaveKnownHeads { peer, crdt, heads } => {
                    self.replicas[r].hints.insert((peer, crdt), heads);
                }
                Effect::Reject { id, reason, .. } => {
                    self.rejects.push(format!("replica {r}: {id}: {reason}"));
                }
                Effect::Close { reason } => {
                    self.closes.push(format!("replica {r}: {reason}"));
                    self.cut(l);
                    return;
                }
            }
        }
    }

    /// Delivers one frame on a random busy link; false when nothing is in flight.
    pub fn step(&mut self) -> bool {
        let busy: Vec<(usize, usize)> = (0..self.links.len())
            .flat_map(|l| (0..2).map(move |s| (l, s)))
            .filter(|&(l, s)| !self.links[l].queues[s].is_empty() && !self.links[l].paused[s])
            .collect();
        if busy.is_empty() {
            return false;
        }
        let (l, to) = busy[self.rng.random_range(0..busy.len())];
        let f = self.faults;
        let queue = &mut self.links[l].queues[to];
        let index = if self.rng.random_range(0..100) < f.reorder {
            self.rng.random_range(0..queue.len())
        } else {
            0
        };
        let Some(frame) = queue.remove(index) else {
            return true;
        };
        if self.rng.random_range(0..100) < f.duplicate {
            queue.push_back(frame.clone());
        }
        if self.rng.random_range(0..100) < f.drop {
            return true;
        }
        self.deliver(l, to, &frame);
        true
    }

    fn deliver(&mut self, l: usize, to: usize, frame: &[u8]) {
        let r = self.links[l].ends[to];
        let received = self.codec.receive(frame);
        if let Ok(Received::Other(Message::Pong(seq))) = received {
            let now = self.now;
            if let Some(flows) = self.links[l].flows.as_mut()
                && flows[to].on_pong(seq, now)
            {
                self.pump(l, to);
            }
            return;
        }
        let Some(sessions) = self.links[l].sessions.as_mut() else {
            return;
        };
        let effects = match received {
            Ok(msg) => {
                let crdts = msg.crdts().to_vec();
                let scope = Scoped {
                    replica: &self.replicas[r],
                    crdts: &crdts,
                };
                sessions[to].on_received(msg, &scope)
            }
            Err(e) => sessions[to].on_decode_error(e),
        };
        self.run_effects(l, to, effects);
    }

    /// Delivers, in one flight, every frame in flight now on every link (what either side sent
    /// before this call; what they send in answer waits for the next flight): one one-way
    /// trip of the network. False when nothing was in flight.
    pub fn flight(&mut self) -> bool {
        let mut now = Vec::new();
        for l in 0..self.links.len() {
            for to in 0..2 {
                if !self.links[l].paused[to] {
                    let frames: Vec<Vec<u8>> = self.links[l].queues[to].drain(..).collect();
                    now.extend(frames.into_iter().map(|f| (l, to, f)));
                }
            }
        }
        for (l, to, frame) in &now {
            self.deliver(*l, *to, frame);
        }
        !now.is_empty()
    }

    /// Delivers until nothing is in flight; panics if that takes more than `max` steps.
    pub fn quiesce(&mut self, max: usize) {
        for _ in 0..max {
            if !self.step() {
                return;
            }
        }
        panic!("network did not quiesce within {max} steps");
    }

    /// Asserts every replica holds the same graph (nodes and heads) of every CRDT and
    /// every value its commits reference.
    pub fn assert_converged(&self, crdts: &[CrdtKey]) {
        for r in &self.replicas {
            r.check_invariants();
        }
        for crdt in crdts {
            let first = self.replicas[0]
                .crdts
                .get(crdt)
                .expect("replica 0 holds crdt");
            for (i, r) in self.replicas.iter().enumerate().skip(1) {
                let dag = r.crdts.get(crdt).expect("replica holds crdt");
                assert_eq!(
                    dag.heads, first.heads,
                    "replica {i} heads differ for {crdt}"
                );
                assert_eq!(
                    dag.nodes.len(),
                    first.nodes.len(),
                    "replica {i} commit count differs for {crdt}"
                );
                assert!(first.nodes.keys().all(|id| dag.nodes.contains_key(id)));
            }
        }
    }
}
