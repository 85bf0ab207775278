//! `CollectorActor`: the buffer between a source and the CDVCS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::sync::watch;

use crate::crdt::CrdtKey;
use crate::id::Id;
use crate::stage::{Committed, RecordTx, Stage, StageError, WritePolicy};
use crate::store::WriteBatch;
use crate::tweets::SourcePosition;

pub use super::link::CollectorLink;

pub use crate::tweets::ADD_TWEET;

/// How a collector commits.
#[derive(Clone, Debug)]
pub struct CollectOptions {
    /// The CDVCS to commit into.
    pub key: CrdtKey,
    /// Flush at least this often.
    pub flush: Duration,
    /// Flush at this many buffered tweets.
    pub batch: usize,
    /// The state key of the file source's checkpoint (None for stdin and HTTP).
    pub checkpoint_key: Option<Vec<u8>>,
}

/// What a collector did so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectReport {
    /// Tweets committed durably.
    pub tweets: u64,
    /// Commits made.
    pub commits: u64,
    /// Source lines skipped (reported with their line number and reason).
    pub skipped_lines: u64,
    /// Tweets left out because this node had already committed their id (a stream that
    /// delivers them again, or a source that repeats them).
    pub repeats: u64,
    /// Tweets buffered and not yet committed.
    pub buffered: u64,
    /// Tweets whose commit failed (a file source reads them again from its checkpoint;
    /// standard input and HTTP sources cannot).
    pub failed: u64,
    /// Why the last commit (or join) failed, with its error chain.
    pub last_error: Option<String>,
    /// The source has ended and everything is committed.
    pub finished: bool,
    /// The last commit.
    pub last_commit: Option<Id>,
}

/// One item a source feeds.
#[derive(Debug)]
pub enum FeedItem {
    /// A tweet: its id, its params value bytes and, for a file, the position after it.
    Tweet {
        /// The tweet's id (committed at most once per CDVCS).
        id: String,
        /// The encoded params (tweet with its author).
        params: Vec<u8>,
        /// The position after this tweet (file sources only).
        after: Option<SourcePosition>,
    },
    /// A skipped line; a file's position moves past it.
    Skipped {
        /// The position after the line (file sources only).
        after: Option<SourcePosition>,
    },
}

/// A chunk of the source, in order. Answered once the collector has taken it.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CommitFailed>")]
pub struct Feed(pub Vec<FeedItem>);

/// The source reached its end: flush, join concurrent heads and finish.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CommitFailed>")]
pub struct SourceEnded;

/// Commit what is buffered (joining concurrent heads first), or with nothing buffered join
/// them, at once (SIGTERM/SIGINT; the flush timer sends [`Tick`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CommitFailed>")]
pub struct FlushNow;

/// The flush timer's tick: like [`FlushNow`], except that a join with nothing to commit waits
/// out the idle-join backoff ([`CollectorActor::idle_join_due`]).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CommitFailed>")]
struct Tick;

/// The longest random wait before an idle join, once joins keep crossing (unless the flush
/// interval is longer: then one flush interval).
const IDLE_JOIN_WINDOW_CAP: Duration = Duration::from_secs(5);

/// A commit (or join) of the collector failed; what was buffered is not durable.
#[derive(Clone, Debug, thiserror::Error)]
#[error("committing {tweets} tweets into {key} failed")]
pub struct CommitFailed {
    /// Which CDVCS.
    pub key: CrdtKey,
    /// How many tweets the failed commit held (0 for a join).
    pub tweets: u64,
    /// Why.
    #[source]
    pub source: Arc<StageError>,
}

/// The actor.
pub struct CollectorActor {
    stage: Stage,
    opts: CollectOptions,
    buffer: Vec<RecordTx>,
    position: Option<SourcePosition>,
    link: CollectorLink,
    report: watch::Sender<CollectReport>,
    /// A [`Tick`] is in the mailbox.
    flush_queued: bool,
    /// Joins made with nothing to commit since this writer last committed tweets.
    idle_joins: u32,
    /// The timer's next idle join waits until then (see [`Self::idle_join_due`]).
    idle_join_at: Option<Instant>,
}

impl CollectorActor {
    /// A collector committing through `stage`; `report` carries its progress. A new
    /// incarnation starts with an empty buffer, so the source resumes from the durable
    /// checkpoint (what an earlier incarnation buffered was never committed).
    pub fn new(
        stage: Stage,
        opts: CollectOptions,
        link: CollectorLink,
        report: watch::Sender<CollectReport>,
    ) -> CollectorActor {
        link.set_fed(None);
        report.send_modify(|r| r.buffered = 0);
        CollectorActor {
            stage,
            opts,
            buffer: Vec::new(),
            position: None,
            link,
            report,
            flush_queued: false,
            idle_joins: 0,
            idle_join_at: None,
        }
    }

    /// Whether the timer may join heads now with nothing to commit. Two writers that join
    /// at every tick while their merges take longer than a tick to reach each other each
    /// merge the other's previous merge, for ever (two heads again at every arrival). So
    /// after an idle join the next one waits a random time in a window that doubles with
    /// every further idle join (capped): one writer then joins while the other waits, and
    /// the other receives a merge of both heads. The first idle join after committing
    /// tweets is not delayed; SIGTERM/SIGINT and the source's end never are.
    fn idle_join_due(&self) -> bool {
        self.idle_join_at.is_none_or(|at| Instant::now() >= at)
    }

    /// Books an idle join: `merged` when it made a merge commit.
    fn idle_joined(&mut self, merged: bool) {
        if !merged {
            return;
        }
        use rand::Rng as _;
        self.idle_joins = self.idle_joins.saturating_add(1);
        let cap = IDLE_JOIN_WINDOW_CAP.max(self.opts.flush);
        let window = self
            .opts
            .flush
            .saturating_mul(1u32 << self.idle_joins.min(16))
            .min(cap);
        let wait = rand::rng().random_range(Duration::ZERO..=window);
        self.idle_join_at = Some(Instant::now() + wait);
    }

    /// Books a commit of tweets: the next idle join is not delayed.
    fn wrote(&mut self) {
        self.idle_joins = 0;
        self.idle_join_at = None;
    }

    /// Commits the buffer (if any) with the checkpoint in the same atomic batch, joining
    /// concurrent heads first; with an empty buffer, only joins them (a writer merges within
    /// one flush interval even when it has nothing to write).
    fn flush(&mut self) -> ResponseActFuture<Self, Result<(), CommitFailed>> {
        let stage = self.stage.clone();
        let key = self.opts.key.clone();
        if self.buffer.is_empty() {
            return Box::pin(
                async move { stage.join_heads(&key).await }
                    .into_actor(self)
                    .map(move |res, act, ctx| {
                        act.idle_joined(matches!(res, Ok(Some(_))));
                        act.committed(res.map(|_| None), 0, ctx)
                    }),
            );
        }
        let txs = std::mem::take(&mut self.buffer);
        let n = txs.len() as u64;
        let mut extra = WriteBatch::new();
        if let (Some(key), Some(pos)) = (&self.opts.checkpoint_key, self.position) {
            crate::store::checkpoint::put(&mut extra, key.clone(), &pos);
        }
        Box::pin(
            async move {
                (stage.transact_once(&key, txs, extra, WritePolicy::MergeFirst))
                    .await
                    .map(Some)
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                if res.is_ok() {
                    act.wrote();
                }
                act.committed(res, n, ctx)
            }),
        )
    }

    /// Flush, then join what arrived meanwhile: nothing buffered and one head afterwards.
    fn settle(&mut self) -> ResponseActFuture<Self, Result<(), CommitFailed>> {
        Box::pin(self.flush().then(|res, act, _ctx| {
            let next: ResponseActFuture<Self, Result<(), CommitFailed>> = match res {
                Ok(()) => act.flush(),
                Err(e) => Box::pin(fut::ready(Err(e))),
            };
            next
        }))
    }

    /// Books the outcome of a commit of `n` buffered tweets (0: a join).
    fn committed(
        &mut self,
        res: Result<Option<Committed>, StageError>,
        n: u64,
        ctx: &mut Context<Self>,
    ) -> Result<(), CommitFailed> {
        let done = match res {
            Ok(done) => done,
            Err(e) => {
                let error = CommitFailed {
                    key: self.opts.key.clone(),
                    tweets: n,
                    source: Arc::new(e),
                };
                let chain = crate::realize::realizer::error_chain(&error);
                tracing::error!("{chain}");
                self.report.send_modify(|r| {
                    r.failed += n;
                    r.buffered = 0;
                    r.last_error = Some(chain);
                });
                // What was buffered is not durable: end this incarnation so the source
                // resumes from the durable checkpoint.
                replikativ_actors::fail(ctx, error.clone());
                return Err(error);
            }
        };
        let Some(done) = done else {
            return Ok(());
        };
        let repeats = done.repeats as u64;
        self.report.send_modify(|r| {
            r.tweets += n - repeats;
            r.repeats += repeats;
            r.buffered = self.buffer.len() as u64;
            if let Some(id) = done.commit {
                r.commits += 1;
                r.last_commit = Some(id);
            }
        });
        let r = self.report.borrow().clone();
        match done.commit {
            Some(id) => tracing::info!(
                commit = %id.short(),
                tweets = r.tweets,
                commits = r.commits,
                repeats = r.repeats,
                skipped_lines = r.skipped_lines,
                "committed {} tweets",
                n - repeats
            ),
            None => tracing::info!(
                repeats = r.repeats,
                "{n} tweets were committed before; nothing new to commit"
            ),
        }
        Ok(())
    }
}

impl Actor for CollectorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = self.opts.flush;
        // The timer asks through the mailbox, never with `ctx.wait` from the timer itself:
        // actix polls timers after a handler has queued its `AtomicResponse` but before that
        // response starts, and polls queued waits newest first, so a timed flush would commit
        // the buffer's tail (and its checkpoint) before the chunk's earlier full batches. A
        // SIGKILL between the two then lost those batches, and the checkpoint went backwards
        // (tweets collected twice after a restart). Messages are handled in order.
        // Every tick flushes, also with an empty buffer: a flush then joins concurrent heads
        // (after the idle-join backoff, see `idle_join_due`).
        ctx.run_interval(every, |act, ctx| {
            if !act.flush_queued {
                act.flush_queued = true;
                ctx.address().do_send(Tick);
            }
        });
    }
}

impl Handler<Feed> for CollectorActor {
    type Result = AtomicResponse<Self, Result<(), CommitFailed>>;

    fn handle(&mut self, msg: Feed, _ctx: &mut Context<Self>) -> Self::Result {
        // Take items until the buffer is full; flush; go on with the rest.
        let mut items = msg.0.into_iter();
        let mut chain: ResponseActFuture<Self, Result<(), CommitFailed>> =
            Box::pin(fut::ready(Ok(())));
        let mut skipped = 0u64;
        loop {
            let mut full = false;
            for item in items.by_ref() {
                match item {
                    FeedItem::Tweet { id, params, after } => {
                        self.buffer.push(RecordTx {
                            record: id,
                            op: ADD_TWEET.to_string(),
                            params,
                        });
                        if after.is_some() {
                            self.position = after;
                        }
                    }
                    FeedItem::Skipped { after } => {
                        skipped += 1;
                        if after.is_some() {
                            self.position = after;
                        }
                    }
                }
                if self.buffer.len() >= self.opts.batch {
                    full = true;
                    break;
                }
            }
            self.link.set_fed(self.position);
            let buffered = self.buffer.len() as u64;
            self.report.send_modify(|r| {
                r.skipped_lines += skipped;
                r.buffered = buffered;
            });
            skipped = 0;
            if !full {
                break;
            }
            // Flush synchronously within this message: the source waits (backpressure).
            let flush = self.flush();
            chain = Box::pin(chain.then(move |res, _act, _ctx| {
                let out: ResponseActFuture<Self, Result<(), CommitFailed>> = match res {
                    Ok(()) => flush,
                    Err(e) => Box::pin(fut::ready(Err(e))),
                };
                out
            }));
            // Remaining items are buffered after this flush is chained (the buffer is empty
            // now because flush() took it).
        }
        AtomicResponse::new(chain)
    }
}

impl Handler<SourceEnded> for CollectorActor {
    type Result = AtomicResponse<Self, Result<(), CommitFailed>>;

    fn handle(&mut self, _msg: SourceEnded, _ctx: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(self.settle().map(|res, act, _ctx| {
            res?;
            act.report.send_modify(|r| r.finished = true);
            Ok(())
        })))
    }
}

impl Handler<FlushNow> for CollectorActor {
    type Result = AtomicResponse<Self, Result<(), CommitFailed>>;

    fn handle(&mut self, _msg: FlushNow, _ctx: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(self.flush())
    }
}

impl Handler<Tick> for CollectorActor {
    type Result = AtomicResponse<Self, Result<(), CommitFailed>>;

    fn handle(&mut self, _msg: Tick, _ctx: &mut Context<Self>) -> Self::Result {
        self.flush_queued = false;
        if self.buffer.is_empty() && !self.idle_join_due() {
            return AtomicResponse::new(Box::pin(fut::ready(Ok(()))));
        }
        AtomicResponse::new(self.flush())
    }
}
