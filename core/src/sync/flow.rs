//! [`Flow`]: flow control of one connection's outgoing catch-ups, a pure type beside
//! [`SyncSession`](super::SyncSession). No actix, no sockets, no clock: the driver passes the
//! time in and carries out what it returns.
//!
//! - **Queue.** Each `SendCommits` effect becomes a job ([`Flow::push`]); jobs are sent in
//!   order.
//! - **Batches.** [`Flow::pump`] loads commits of the front job (through the driver's loader)
//!   until [`FlowLimits::batch_bytes`] are loaded, frames them with [`plan_frames`], and ends
//!   the batch with `Ping(n)`. Memory per connection is bounded by the window, never by the
//!   history.
//! - **Last batch.** Only the last batch of a job announces its `Heads`: a receiver given
//!   heads before their commits would take them for a divergence and negotiate.
//! - **Window.** At most [`FlowLimits::window`] batches may be unacknowledged (by the peer's
//!   `Pong(n)`, [`Flow::on_pong`]); then the sender stops until an acknowledgement arrives.
//! - **Stall.** A peer that acknowledges nothing for [`FlowLimits::stall_timeout`] while
//!   batches are outstanding is [`Stalled`]: the driver closes the connection with that
//!   reason. An idle connection is never stalled.

use std::collections::VecDeque;
use std::fmt::Display;
use std::time::{Duration, Instant};

use crate::crdt::commit::CrdtKey;
use crate::id::Id;
use crate::protocol::Message;

use super::batch::{BatchError, BatchLimits, OutgoingCommit, plan_frames};

/// Batches a peer may leave unacknowledged before we stop sending.
pub const WINDOW: u64 = 4;
/// By default, a peer that acknowledges nothing for this long while we wait is disconnected.
pub const SLOW_PEER_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes of commits and values loaded per outgoing batch.
pub const BATCH_BYTES: usize = 4 << 20;

/// Bounds of a [`Flow`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowLimits {
    /// Most unacknowledged batches (default [`WINDOW`]).
    pub window: u64,
    /// Bytes of commits and values loaded per batch (default [`BATCH_BYTES`]); a batch holds
    /// at least one commit.
    pub batch_bytes: usize,
    /// How long a peer may acknowledge nothing while batches are outstanding (default
    /// [`SLOW_PEER_TIMEOUT`]).
    pub stall_timeout: Duration,
    /// Bounds of the frames of one batch.
    pub frames: BatchLimits,
}

impl Default for FlowLimits {
    fn default() -> FlowLimits {
        FlowLimits {
            window: WINDOW,
            batch_bytes: BATCH_BYTES,
            stall_timeout: SLOW_PEER_TIMEOUT,
            frames: BatchLimits::default(),
        }
    }
}

/// What [`Flow::pump`] asks the driver to do, in order.
#[derive(Debug)]
pub enum FlowOutput {
    /// Send this message as one frame.
    Send(Message),
    /// A commit could not be loaded; it is skipped (the peer negotiates it later).
    LoadFailed {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The commit.
        id: Id,
        /// The loader's explanation.
        reason: String,
    },
    /// A batch could not be framed; its commits are skipped.
    FrameFailed {
        /// Which CRDT.
        crdt: CrdtKey,
        /// Why.
        error: BatchError,
    },
}

/// The peer acknowledged nothing for too long: close the connection with this reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("peer is not reading (slow consumer): {unacked} batches unacknowledged for {timeout:?}")]
pub struct Stalled {
    /// Batches sent and not acknowledged.
    pub unacked: u64,
    /// The limit that passed.
    pub timeout: Duration,
}

/// One catch-up in progress.
struct Job {
    crdt: CrdtKey,
    ids: VecDeque<Id>,
    heads: Vec<Id>,
}

/// Outgoing flow control of one connection (see the [module docs](self)).
pub struct Flow {
    limits: FlowLimits,
    jobs: VecDeque<Job>,
    /// `Ping`s sent: batch `n` ends with `Ping(n)`.
    sent: u64,
    /// The highest `Pong` received.
    acked: u64,
    /// Since when we wait for the peer: the first batch sent after an idle spell, or the last
    /// acknowledgement that made progress.
    waiting_since: Option<Instant>,
}

impl Flow {
    /// An idle flow.
    pub fn new(limits: FlowLimits) -> Flow {
        Flow {
            limits,
            jobs: VecDeque::new(),
            sent: 0,
            acked: 0,
            waiting_since: None,
        }
    }

    /// The bounds.
    pub fn limits(&self) -> &FlowLimits {
        &self.limits
    }

    /// Queues a catch-up: `ids` (parents first) of `crdt`, then `Heads{heads}`.
    pub fn push(&mut self, crdt: CrdtKey, ids: Vec<Id>, heads: Vec<Id>) {
        self.jobs.push_back(Job {
            crdt,
            ids: ids.into(),
            heads,
        });
    }

    /// Drops the catch-ups not yet sent (e.g. the peer lost the right to read).
    pub fn clear_queued(&mut self) {
        self.jobs.clear();
    }

    /// Batches sent and not yet acknowledged.
    pub fn unacked(&self) -> u64 {
        self.sent - self.acked
    }

    /// Commits queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.jobs.iter().map(|j| j.ids.len()).sum()
    }

    /// Whether the window is full (nothing more is sent until an acknowledgement).
    pub fn window_full(&self) -> bool {
        self.unacked() >= self.limits.window
    }

    /// Sends queued batches while the window allows, loading each commit with `load`.
    pub fn pump<E: Display>(
        &mut self,
        now: Instant,
        mut load: impl FnMut(&CrdtKey, &Id) -> Result<OutgoingCommit, E>,
    ) -> Vec<FlowOutput> {
        let mut out = Vec::new();
        while !self.window_full() {
            let Some(job) = self.jobs.front_mut() else {
                break;
            };
            let crdt = job.crdt.clone();
            let mut commits = Vec::new();
            let mut bytes = 0usize;
            while bytes < self.limits.batch_bytes {
                let Some(id) = job.ids.pop_front() else { break };
                match load(&crdt, &id) {
                    Ok(c) => {
                        bytes += c.bytes.len()
                            + c.values.iter().map(|(_, v)| v.len()).sum::<usize>()
                            + c.packs.iter().map(|p| p.bytes().len()).sum::<usize>();
                        commits.push(c);
                    }
                    Err(e) => out.push(FlowOutput::LoadFailed {
                        crdt: crdt.clone(),
                        id,
                        reason: e.to_string(),
                    }),
                }
            }
            let last = job.ids.is_empty();
            let heads = if last {
                self.jobs.pop_front().map(|j| j.heads).unwrap_or_default()
            } else {
                job.heads.clone()
            };
            match plan_frames(&crdt, commits, heads, &self.limits.frames) {
                Ok(mut frames) => {
                    if !last && let Some(Message::Heads { .. }) = frames.last() {
                        // Only the last batch announces the heads.
                        frames.pop();
                    }
                    out.extend(frames.into_iter().map(FlowOutput::Send));
                }
                Err(error) => out.push(FlowOutput::FrameFailed { crdt, error }),
            }
            if self.sent == self.acked {
                // We start waiting now: an idle spell before is not the peer's slowness.
                self.waiting_since = Some(now);
            }
            self.sent += 1;
            out.push(FlowOutput::Send(Message::Ping(self.sent)));
        }
        out
    }

    /// The peer's `Pong(seq)`: acknowledges every batch up to `seq`. Returns whether it made
    /// progress (then [`pump`](Flow::pump) may send more). Stale or unknown numbers are ignored.
    pub fn on_pong(&mut self, seq: u64, now: Instant) -> bool {
        if seq > self.acked && seq <= self.sent {
            self.acked = seq;
            self.waiting_since = Some(now);
            true
        } else {
            false
        }
    }

    /// Whether the peer has acknowledged nothing for longer than the limit while batches are
    /// outstanding.
    pub fn stalled(&self, now: Instant) -> Option<Stalled> {
        let since = self.waiting_since?;
        let waited = now.saturating_duration_since(since);
        (self.unacked() > 0 && waited > self.limits.stall_timeout).then_some(Stalled {
            unacked: self.unacked(),
            timeout: self.limits.stall_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn key() -> CrdtKey {
        CrdtKey::new("me@x.org", Uuid::from_u128(1))
    }

    fn commit(id: &Id) -> Result<OutgoingCommit, String> {
        Ok(OutgoingCommit {
            id: *id,
            bytes: vec![0x90],
            values: Vec::new(),
            packs: Vec::new(),
            signature: None,
        })
    }

    fn pings(out: &[FlowOutput]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                FlowOutput::Send(Message::Ping(n)) => Some(*n),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn only_an_acknowledgement_of_an_outstanding_batch_makes_progress() {
        let t0 = Instant::now();
        let mut flow = Flow::new(FlowLimits {
            batch_bytes: 1,
            ..FlowLimits::default()
        });
        let ids: Vec<Id> = (0..10u8).map(|i| Id::of(&[i])).collect();
        flow.push(key(), ids, vec![Id::of(b"head")]);
        assert_eq!(pings(&flow.pump(t0, |_, id| commit(id))), vec![1, 2, 3, 4]);
        assert!(!flow.on_pong(5, t0), "batch 5 was never sent");
        assert!(!flow.on_pong(0, t0));
        assert!(flow.on_pong(2, t0), "acknowledges batches 1 and 2");
        assert!(!flow.on_pong(2, t0), "a duplicate");
        assert!(!flow.on_pong(1, t0), "a stale one");
        assert_eq!(pings(&flow.pump(t0, |_, id| commit(id))), vec![5, 6]);
        assert_eq!(flow.unacked(), 4);
        assert_eq!(flow.queued(), 4);
    }

    #[test]
    fn a_commit_that_cannot_be_loaded_is_reported_and_the_batch_goes_on() {
        let t0 = Instant::now();
        let mut flow = Flow::new(FlowLimits::default());
        let ids: Vec<Id> = (0..3u8).map(|i| Id::of(&[i])).collect();
        let missing = ids[1];
        flow.push(key(), ids, vec![Id::of(b"head")]);
        let out = flow.pump(t0, |_, id| {
            if *id == missing {
                Err("gone")
            } else {
                commit(id).map_err(|_| "unreachable")
            }
        });
        assert!(
            matches!(&out[0], FlowOutput::LoadFailed { id, reason, .. } if *id == missing && reason == "gone")
        );
        let sent: Vec<Id> = out
            .iter()
            .filter_map(|o| match o {
                FlowOutput::Send(Message::Commits { commits, .. }) => {
                    Some(commits.iter().map(|b| b.id))
                }
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(sent, vec![Id::of(&[0]), Id::of(&[2])]);
        assert!(matches!(
            out.last(),
            Some(FlowOutput::Send(Message::Ping(1)))
        ));
    }
}
