//! `RealizerActor`: follows one CDVCS and applies each transaction to a [`Sink`] exactly once
//! (DESIGN §7).
//!
//! What it applies next, and in what order, is [`plan`]'s. Only commits durable in the local store are visible to it (the
//! replica publishes nothing before it is durable). The checkpoint is the sink's set of applied
//! commit ids, written in the same sink transaction as the effects, so a restart anywhere
//! re-applies nothing and skips nothing.
//!
//! Failures: any failed apply ends this incarnation with the error (its supervisor restarts it
//! with backoff). A commit that fails deterministically (unknown op, handler error or panic on
//! a poison record) [`MAX_ATTEMPTS`] times parks the stream at that commit: nothing of it or
//! after it is applied, the status names the commit and the reason, and the realizer polls the
//! sink until an operator skips it (`replikativ realize-skip`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

pub use super::error::{RealizeError, error_chain};
pub use super::plan::{ConflictPolicy, plan};
use super::sink::{Sink, SinkError, TxParams};
use super::worker::SinkWorker;
use crate::id::Id;
use crate::replica::ReplicaShared;
use crate::store::Store;

/// Deterministic failures of one commit before the stream parks there.
pub const MAX_ATTEMPTS: u32 = 3;
/// How often a parked realizer checks whether an operator skipped its commit.
const PARKED_POLL: Duration = Duration::from_millis(500);

/// Where a realizer is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RealizerStatus {
    /// Loading its checkpoint.
    Starting,
    /// Applying commits; `pending` are known and not applied yet.
    Applying {
        /// Commits planned and not yet applied.
        pending: usize,
    },
    /// Everything realizable is applied.
    Idle,
    /// Several heads and policy `Wait`: the diverged branches wait for a merge.
    Waiting {
        /// The current heads.
        heads: Vec<Id>,
    },
    /// Stuck at a commit that keeps failing; skip it with `replikativ realize-skip`.
    Parked {
        /// The commit.
        commit: Id,
        /// The last failure.
        reason: String,
    },
}

/// Opens the sink (called on the sink's own thread, once per incarnation).
pub type SinkOpener = Arc<dyn Fn() -> Result<Box<dyn Sink>, SinkError> + Send + Sync>;

/// The part of a realizer that outlives its incarnations.
pub struct RealizerShared {
    /// A name for logs and thread names.
    pub name: String,
    /// The replica it follows.
    pub replica: Arc<ReplicaShared>,
    /// The local store holding commit records and values.
    pub store: Store,
    /// Opens the sink.
    pub open: SinkOpener,
    /// What to do with several heads.
    pub policy: ConflictPolicy,
    attempts: Mutex<HashMap<Id, u32>>,
    applied: Mutex<HashSet<Id>>,
    /// Transactions applied by this node's incarnations since it started (for metrics).
    ops_applied: std::sync::atomic::AtomicU64,
    status: watch::Sender<RealizerStatus>,
}

impl RealizerShared {
    /// Shared state for a realizer of `replica` into the sink `open` builds.
    pub fn new(
        name: impl Into<String>,
        replica: Arc<ReplicaShared>,
        store: Store,
        open: SinkOpener,
        policy: ConflictPolicy,
    ) -> Arc<RealizerShared> {
        Arc::new(RealizerShared {
            name: name.into(),
            replica,
            store,
            open,
            policy,
            attempts: Mutex::new(HashMap::new()),
            applied: Mutex::new(HashSet::new()),
            ops_applied: Default::default(),
            status: watch::channel(RealizerStatus::Starting).0,
        })
    }

    /// Watch the status.
    pub fn status(&self) -> watch::Receiver<RealizerStatus> {
        self.status.subscribe()
    }

    /// Whether `commit` is applied (or skipped) in the sink, as last seen.
    pub fn is_applied(&self, commit: &Id) -> bool {
        self.applied
            .lock()
            .map(|a| a.contains(commit))
            .unwrap_or(false)
    }

    /// How many commits are applied, as last seen.
    pub fn applied_count(&self) -> usize {
        self.applied.lock().map(|a| a.len()).unwrap_or(0)
    }

    /// Transactions handed to the sink and committed since the node started.
    pub fn ops_applied(&self) -> u64 {
        self.ops_applied.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The actor.
pub struct RealizerActor {
    shared: Arc<RealizerShared>,
    worker: Option<Arc<SinkWorker>>,
    queue: VecDeque<Id>,
    busy: bool,
    parked: Option<Id>,
}

impl RealizerActor {
    /// A realizer incarnation; it opens the sink on its own thread.
    pub fn new(shared: Arc<RealizerShared>) -> Result<RealizerActor, RealizeError> {
        let open = shared.open.clone();
        let worker = SinkWorker::start(&shared.name, move || open()).map_err(|source| {
            RealizeError::Open {
                name: shared.name.clone(),
                source: Box::new(source),
            }
        })?;
        Ok(RealizerActor {
            shared,
            worker: Some(Arc::new(worker)),
            queue: VecDeque::new(),
            busy: false,
            parked: None,
        })
    }

    fn name(&self) -> String {
        self.shared.name.clone()
    }

    fn set_status(&self, status: RealizerStatus) {
        self.shared.status.send_if_modified(|s| {
            if *s != status {
                *s = status;
                true
            } else {
                false
            }
        });
    }

    fn replan(&mut self) {
        let state = self.shared.replica.state();
        let guard = match state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let applied = match self.shared.applied.lock() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let (todo, conflict) = plan(&guard, &applied, self.shared.policy);
        drop(guard);
        self.queue = todo.into();
        if self.parked.is_none() {
            match (&conflict, self.queue.is_empty()) {
                (Some(heads), true) => self.set_status(RealizerStatus::Waiting {
                    heads: heads.clone(),
                }),
                (_, true) => self.set_status(RealizerStatus::Idle),
                (_, false) => self.set_status(RealizerStatus::Applying {
                    pending: self.queue.len(),
                }),
            }
        }
    }

    /// The commit's transactions with their params bytes, from the local store.
    /// The commit's author (its key, or `unsigned`) and its transactions with their params.
    fn load(&self, commit: &Id) -> Result<(String, Vec<TxParams>), RealizeError> {
        let name = self.name();
        let damaged = |what, id| RealizeError::Damaged {
            name: name.clone(),
            what,
            id,
        };
        let loaded = match crate::store::cdvcs::load_commit(&self.shared.store, commit) {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return Err(damaged("commit", *commit)),
            Err(crate::store::cdvcs::CommitReadError::Store { id, source }) => {
                return Err(RealizeError::Store {
                    name: name.clone(),
                    what: if id == *commit { "commit" } else { "value" },
                    id,
                    source,
                });
            }
            Err(_) => return Err(damaged("commit", *commit)),
        };
        // The replica verified the signature before it stored the commit: not again here.
        let author = match &loaded.commit.signature {
            Some(_) => loaded.commit.commit.author.clone(),
            None => "unsigned".to_owned(),
        };
        let ops = loaded.commit.commit.transactions.into_iter().map(|t| t.op);
        let txs = ops
            .zip(loaded.params)
            // Grants and revokes of write access are system operations: no handler sees them.
            .filter(|(op, _)| !crate::crdt::authorship::is_access_op(op))
            .map(|(op, (id, bytes))| bytes.map(|b| (op, b)).ok_or_else(|| damaged("value", id)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((author, txs))
    }

    fn step(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.parked.is_some() {
            return;
        }
        let next = loop {
            match self.queue.pop_front() {
                None => {
                    self.replan();
                    match self.queue.pop_front() {
                        None => return,
                        Some(id) => break id,
                    }
                }
                Some(id) if self.shared.is_applied(&id) => continue,
                Some(id) => break id,
            }
        };
        let (author, txs) = match self.load(&next) {
            Ok(loaded) => loaded,
            Err(e) => return self.fail(e, ctx),
        };
        let Some(worker) = self.worker.clone() else {
            return;
        };
        self.busy = true;
        let name = self.name();
        let ops = txs.len() as u64;
        ctx.spawn(
            async move { worker.apply(next, author, txs).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    act.busy = false;
                    match res {
                        Err(_) => act.fail(RealizeError::WorkerGone { name }, ctx),
                        Ok(Ok(())) => {
                            if let Ok(mut a) = act.shared.applied.lock() {
                                a.insert(next);
                            }
                            act.shared
                                .ops_applied
                                .fetch_add(ops, std::sync::atomic::Ordering::Relaxed);
                            if let Ok(mut at) = act.shared.attempts.lock() {
                                at.remove(&next);
                            }
                            act.set_status(RealizerStatus::Applying {
                                pending: act.queue.len(),
                            });
                            act.step(ctx);
                        }
                        Ok(Err(source)) => act.failed_apply(next, source, ctx),
                    }
                }),
        );
    }

    fn failed_apply(&mut self, commit: Id, source: SinkError, ctx: &mut Context<Self>) {
        let attempts = if source.is_deterministic() {
            let mut at = match self.shared.attempts.lock() {
                Ok(a) => a,
                Err(p) => p.into_inner(),
            };
            let n = at.entry(commit).or_insert(0);
            *n += 1;
            *n
        } else {
            0
        };
        if attempts >= MAX_ATTEMPTS {
            let reason = error_chain(&source);
            tracing::error!(
                realizer = %self.shared.name,
                commit = %commit,
                attempts,
                reason = %reason,
                "realizer parked at a commit that keeps failing; skip it with `replikativ realize-skip --commit {commit}`"
            );
            self.parked = Some(commit);
            self.set_status(RealizerStatus::Parked { commit, reason });
            return;
        }
        let name = self.name();
        self.fail(
            RealizeError::Sink {
                name,
                commit,
                source: Box::new(source),
            },
            ctx,
        );
    }

    fn fail(&mut self, error: RealizeError, ctx: &mut Context<Self>) {
        tracing::warn!(realizer = %self.shared.name, error = %error_chain(&error), "realizer failed");
        replikativ_actors::fail(ctx, error);
    }

    fn check_skipped(&mut self, ctx: &mut Context<Self>) {
        let (Some(commit), Some(worker)) = (self.parked, self.worker.clone()) else {
            return;
        };
        ctx.spawn(
            async move { worker.applied().await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if let Ok(Ok(set)) = res
                        && set.contains(&commit)
                    {
                        tracing::info!(realizer = %act.shared.name, commit = %commit, "parked commit was skipped by an operator; resuming");
                        if let Ok(mut a) = act.shared.applied.lock() {
                            *a = set;
                        }
                        act.parked = None;
                        act.replan();
                        act.step(ctx);
                    }
                }),
        );
    }
}

impl Actor for RealizerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(worker) = self.worker.clone() else {
            return;
        };
        let name = self.name();
        ctx.wait(async move { worker.applied().await }.into_actor(self).map(
            move |res, act, ctx| match res {
                Err(_) => act.fail(RealizeError::WorkerGone { name }, ctx),
                Ok(Err(source)) => act.fail(
                    RealizeError::Open {
                        name,
                        source: Box::new(source),
                    },
                    ctx,
                ),
                Ok(Ok(set)) => {
                    if let Ok(mut a) = act.shared.applied.lock() {
                        *a = set;
                    }
                    ctx.add_stream(act.shared.replica.watch_stream());
                    act.replan();
                    act.step(ctx);
                }
            },
        ));
        ctx.run_interval(PARKED_POLL, |act, ctx| act.check_skipped(ctx));
    }
}

impl StreamHandler<crate::replica::Watched> for RealizerActor {
    fn handle(&mut self, _item: crate::replica::Watched, ctx: &mut Context<Self>) {
        if !self.busy {
            self.replan();
            self.step(ctx);
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // The replica's change channel closed: the node is shutting down.
    }
}

/// A realizer to run under the node.
#[derive(Clone)]
pub struct RealizerSpec {
    /// Its name (supervision id, logs).
    pub name: String,
    /// The CDVCS it follows.
    pub key: crate::crdt::CrdtKey,
    /// Opens its sink.
    pub open: SinkOpener,
    /// What to do with several heads.
    pub policy: ConflictPolicy,
}
