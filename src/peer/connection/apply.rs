//! Received batches to their replicas, pipelined: a [`ConnectionActor`] hands each verified
//! batch to the replica of its CDVCS without waiting for the one before, so the batches of
//! many CDVCSs become durable together (the store's group commit takes every batch queued
//! while it writes: one transaction and one fsync for many CDVCSs, not one each). Per CDVCS
//! the batches stay in order: the next is handed over only once the one before is durable.
//! At most [`APPLY_WINDOW`] batches (and [`APPLY_BYTES`]) are outstanding; beyond that the
//! effect queue pauses, and with it the `Pong`s that let the peer send more.
//!
//! New CDVCSs (the peer's subscriptions) are created the same way: the roots of all waiting
//! to be created are written in one durable batch; their batches wait for it.
//!
//! Durable before visible is the replica's: it changes its state and tells its watchers only
//! once its batch is durable, and the session learns of it (`on_applied`) only then.

use std::collections::{HashMap, VecDeque};

use actix::prelude::*;

use super::ConnectionActor;
use crate::crdt::CrdtKey;
use crate::replica::ApplyRemote;
use crate::store::StoreError;
use crate::sync::VerifiedBatch;

/// Most received batches one connection has handed to replicas and not yet seen durable.
pub const APPLY_WINDOW: usize = 256;
/// Most bytes of those batches.
pub const APPLY_BYTES: usize = 32 << 20;

/// A batch waiting for the one before it of its CDVCS.
struct Waiting {
    generation: u64,
    batch: VerifiedBatch,
    bytes: usize,
}

/// The applies of one connection actor (across its sessions: a batch of a session that has
/// ended still goes to its replica, and the next session's batches of that CDVCS wait for it).
#[derive(Default)]
pub(super) struct Applies {
    /// Batches accepted and not yet durable (or failed), and their bytes.
    count: usize,
    bytes: usize,
    /// CDVCSs with a batch in flight or being created, with the batches waiting behind.
    busy: HashMap<CrdtKey, VecDeque<Waiting>>,
    /// CDVCSs to create once the creation in flight is done.
    to_create: Vec<CrdtKey>,
    creating: bool,
    /// CDVCSs the peer's subscriptions created here, over every session of a dialled
    /// connection: the subscription limit bounds them all, not each session's (else a peer
    /// offering more would be taken a limit's worth per redial).
    created: usize,
}

impl Applies {
    /// Whether the effect queue must wait for applies to finish.
    pub(super) fn full(&self, window: usize) -> bool {
        self.count >= window.max(1) || self.bytes >= APPLY_BYTES
    }
}

fn size(batch: &VerifiedBatch) -> usize {
    batch.commits.iter().map(|c| c.bytes.len()).sum::<usize>()
        + batch.values.iter().map(|v| v.len()).sum::<usize>()
        + batch.packs.iter().map(|p| p.bytes().len()).sum::<usize>()
}

impl ConnectionActor {
    /// Hands a verified batch to its replica, or queues it behind the one before of its CDVCS.
    pub(super) fn apply(&mut self, crdt: CrdtKey, batch: VerifiedBatch, ctx: &mut Context<Self>) {
        let bytes = size(&batch);
        self.applies.count += 1;
        self.applies.bytes += bytes;
        let waiting = Waiting {
            generation: self.generation,
            batch,
            bytes,
        };
        match self.applies.busy.get_mut(&crdt) {
            Some(queue) => queue.push_back(waiting),
            None => {
                self.applies.busy.insert(crdt.clone(), VecDeque::new());
                self.hand_over(crdt, waiting, ctx);
            }
        }
    }

    /// The peer subscribed to `crdt`, which this node does not hold: create it (with others
    /// waiting to be created, in one durable write), its batches queued until then.
    pub(super) fn create(&mut self, crdt: CrdtKey, ctx: &mut Context<Self>) {
        self.applies.created += 1;
        if self.node.subscriptions().apply_window <= 1 {
            return self.create_now(crdt, ctx);
        }
        // A CDVCS with a batch in flight is created by that batch's replica.
        if self.applies.busy.contains_key(&crdt) {
            return;
        }
        self.applies.busy.insert(crdt.clone(), VecDeque::new());
        self.applies.to_create.push(crdt);
        if !self.applies.creating {
            self.create_waiting(ctx);
        }
    }

    fn create_waiting(&mut self, ctx: &mut Context<Self>) {
        let keys = std::mem::take(&mut self.applies.to_create);
        self.applies.creating = true;
        let node = self.node.clone();
        // A task of its own: it holds the registry's start lock, which a frame waiting for
        // its replicas to start (the actor paused) also takes.
        let to_create = keys.clone();
        let task = actix_rt::spawn(async move { node.replicas.create_all(&to_create).await });
        let fut = async move {
            let res = task
                .await
                .unwrap_or_else(|_| Err(StoreError::WriterStopped));
            (keys, res)
        };
        ctx.spawn(fut.into_actor(self).map(|(keys, res), act, ctx| {
            act.applies.creating = false;
            if let Err(e) = res {
                // Their replicas create them when their first batch arrives.
                tracing::error!(remote = %act.remote, "cannot create {} CDVCSs: {}", keys.len(), replikativ_actors::error_chain(&e));
            }
            for key in keys {
                act.next_of(key, ctx);
            }
            if !act.applies.to_create.is_empty() {
                act.create_waiting(ctx);
            }
        }));
    }

    /// As before pipelining (the benchmark baseline): the queue waits until the replica runs.
    fn create_now(&mut self, crdt: CrdtKey, ctx: &mut Context<Self>) {
        self.busy = true;
        let node = self.node.clone();
        ctx.wait(
            async move { node.replicas.ensure(&crdt).await.map(|_| ()) }
                .into_actor(self)
                .map(|res, act, ctx| {
                    act.busy = false;
                    if let Err(e) = res {
                        tracing::error!(remote = %act.remote, "cannot create a replica: {e}");
                    }
                    act.drive(ctx);
                }),
        );
    }

    /// A fresh dialled session may create only what earlier ones left of the limit.
    pub(super) fn bound_subscriptions(&mut self) {
        if self.is_dialer() && !self.node.mirrors() {
            let left = self.node.subscriptions().max;
            self.session
                .limit_subscriptions(left.saturating_sub(self.applies.created));
        }
    }

    /// Hands the next waiting batch of `crdt` (of a live session) over, or marks it idle.
    fn next_of(&mut self, crdt: CrdtKey, ctx: &mut Context<Self>) {
        loop {
            let Some(queue) = self.applies.busy.get_mut(&crdt) else {
                return;
            };
            let Some(next) = queue.pop_front() else {
                self.applies.busy.remove(&crdt);
                return;
            };
            if next.generation == self.generation {
                return self.hand_over(crdt, next, ctx);
            }
            // Its session ended: the peer sends it again on the next.
            self.applies.count -= 1;
            self.applies.bytes -= next.bytes;
        }
    }

    fn hand_over(&mut self, crdt: CrdtKey, waiting: Waiting, ctx: &mut Context<Self>) {
        let Waiting {
            generation,
            batch,
            bytes,
        } = waiting;
        let node = self.node.clone();
        let origin = Some(self.id);
        let key = crdt.clone();
        // `batch.values_to_check` (params not carried) are checked by the replica, which
        // refuses the whole batch when one is not held.
        // A task of its own (see `create_waiting`).
        let task = actix_rt::spawn(async move {
            let addr = node.replicas.addr(&key).await.map_err(|e| e.to_string())?;
            let msg = ApplyRemote {
                commits: batch.commits,
                values: batch.values,
                packs: batch.packs,
                values_to_check: batch.values_to_check,
                origin,
            };
            match addr.send(msg).await {
                Ok(Ok(_added)) => Ok(()),
                Ok(Err(e)) => Err(replikativ_actors::error_chain(&e)),
                Err(_) => Err("the replica actor stopped".to_string()),
            }
        });
        let fut = async move {
            task.await
                .unwrap_or_else(|_| Err("the apply task panicked".to_string()))
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.applies.count -= 1;
            act.applies.bytes -= bytes;
            let live = generation == act.generation;
            let effects = match res {
                Ok(()) if live => act.graphs_call(std::slice::from_ref(&crdt), |s, g| {
                    s.on_applied(&crdt, g)
                }),
                Ok(()) => Vec::new(),
                Err(reason) => {
                    let peer = act.session.peer().map_or_else(|| "unauthenticated".to_owned(), |k| k.to_string());
                    tracing::warn!(remote = %act.remote, %peer, crdt = %crdt, "applying a batch from {peer} failed: {reason}");
                    // The batches behind it need it: dropped (the session closes).
                    if let Some(queue) = act.applies.busy.get_mut(&crdt) {
                        for w in queue.drain(..) {
                            act.applies.count -= 1;
                            act.applies.bytes -= w.bytes;
                        }
                    }
                    if live { act.session.on_apply_failed(&crdt, reason) } else { Vec::new() }
                }
            };
            act.next_of(crdt, ctx);
            act.run(effects, ctx);
        }));
    }
}
