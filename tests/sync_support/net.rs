//! A deterministic simulated network in the manner of raft-rs: replicas joined by links that
//! can drop, duplicate, reorder, cut and heal. Each link end runs a `SyncSession`; frames
//! travel encoded through the real codec and are counted. Every session input sees only the
//! CRDTs its frame names ([`Scoped`]), so every run checks that a frame touches only its own
//! CRDT.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replikativ::Id;
use replikativ::crdt::CrdtKey;
use replikativ::protocol::Codec;
use replikativ::sync::{
    BatchLimits, Effect, GraphView, Graphs, SessionConfig, SyncLimits, SyncSession, plan_frames,
};
use uuid::Uuid;

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
    fn known_heads_hint(&self, peer: &Uuid, crdt: &CrdtKey) -> Vec<Id> {
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
    /// Frames in flight towards end 0 and end 1.
    pub queues: [VecDeque<Vec<u8>>; 2],
}

pub struct Sim {
    pub replicas: Vec<Replica>,
    pub links: Vec<Link>,
    pub rng: StdRng,
    pub faults: Faults,
    pub codec: Codec,
    pub batch: BatchLimits,
    pub limits: SyncLimits,
    pub bytes: u64,
    pub frames: u64,
    pub rejects: Vec<String>,
    pub closes: Vec<String>,
}

impl Sim {
    pub fn new(replicas: Vec<Replica>, edges: &[(usize, usize)], seed: u64) -> Sim {
        let links = edges
            .iter()
            .map(|&(a, b)| Link {
                ends: [a, b],
                sessions: None,
                queues: [VecDeque::new(), VecDeque::new()],
            })
            .collect();
        Sim {
            replicas,
            links,
            rng: StdRng::seed_from_u64(seed),
            faults: Faults::default(),
            codec: Codec::default(),
            batch: BatchLimits::default(),
            limits: SyncLimits::default(),
            bytes: 0,
            frames: 0,
            rejects: Vec::new(),
            closes: Vec::new(),
        }
    }

    /// Brings link `l` up with fresh sessions (a reconnect).
    pub fn heal(&mut self, l: usize) {
        self.cut(l);
        let mut sessions = self.links[l].ends.map(|r| {
            SyncSession::new(SessionConfig {
                local_peer: self.replicas[r].peer,
                subscriptions: self.replicas[r].subscriptions.clone(),
                limits: self.limits,
            })
        });
        let starts = [sessions[0].start(), sessions[1].start()];
        self.links[l].sessions = Some(sessions);
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
        link.queues.iter_mut().for_each(VecDeque::clear);
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

    fn send(&mut self, l: usize, side: usize, msg: &replikativ::protocol::Message) {
        let frame = self.codec.encode(msg).expect("own frames encode");
        self.bytes += frame.len() as u64;
        self.frames += 1;
        self.links[l].queues[1 - side].push_back(frame);
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
                Effect::SendCommits { crdt, ids, heads } => {
                    let items = self.replicas[r].load(&crdt, &ids);
                    let frames = plan_frames(&crdt, items, heads, &self.batch).expect("plan");
                    for msg in frames {
                        self.send(l, side, &msg);
                    }
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
            .filter(|&(l, s)| !self.links[l].queues[s].is_empty())
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
        let Some(sessions) = self.links[l].sessions.as_mut() else {
            return;
        };
        let effects = match self.codec.receive(frame) {
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
