//! `CollectorActor`: the buffer between a source and the CDVCS.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use crate::crdt::CrdtKey;
use crate::id::Id;
use crate::stage::{Stage, StageError};
use crate::store::WriteBatch;
use crate::tweets::SourcePosition;

/// The op name of a collected tweet.
pub const ADD_TWEET: &str = "add-tweet";

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
    /// Tweets buffered and not yet committed.
    pub buffered: u64,
    /// The source has ended and everything is committed.
    pub finished: bool,
    /// The last commit.
    pub last_commit: Option<Id>,
}

/// One item a source feeds.
#[derive(Debug)]
pub enum FeedItem {
    /// A tweet's params value bytes and, for a file, the position after it.
    Tweet {
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
#[rtype(result = "Result<(), StageError>")]
pub struct Feed(pub Vec<FeedItem>);

/// The source reached its end: flush and finish.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StageError>")]
pub struct SourceEnded;

/// Flush now (timer, SIGTERM/SIGINT).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), StageError>")]
pub struct FlushNow;

/// Where the current collector incarnation is, and how far it has been fed. Shared by the
/// collector (which registers itself on start) and the source (which feeds it and resumes
/// after what it fed).
#[derive(Clone, Default)]
pub struct CollectorLink {
    addr: Arc<Mutex<Option<Addr<CollectorActor>>>>,
    fed: Arc<Mutex<Option<SourcePosition>>>,
}

impl CollectorLink {
    /// The current collector, if one is running.
    pub fn addr(&self) -> Option<Addr<CollectorActor>> {
        self.addr.lock().ok()?.clone().filter(|a| a.connected())
    }

    /// The position after the last tweet fed to the current collector.
    pub fn fed(&self) -> Option<SourcePosition> {
        self.fed.lock().ok().and_then(|p| *p)
    }

    fn set_fed(&self, pos: Option<SourcePosition>) {
        if let Ok(mut p) = self.fed.lock() {
            *p = pos;
        }
    }
}

/// Why a collector incarnation ended.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A commit failed; the buffer is dropped and the source resumes from the checkpoint.
    #[error("committing the buffer failed: {0}")]
    Commit(String),
}

/// The actor.
pub struct CollectorActor {
    stage: Stage,
    opts: CollectOptions,
    buffer: Vec<(String, Vec<u8>)>,
    position: Option<SourcePosition>,
    link: CollectorLink,
    report: watch::Sender<CollectReport>,
    /// A timed [`FlushNow`] is in the mailbox.
    flush_queued: bool,
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
        }
    }

    /// Commits the buffer (if any) with the checkpoint in the same atomic batch.
    fn flush(&mut self) -> ResponseActFuture<Self, Result<(), StageError>> {
        if self.buffer.is_empty() {
            return Box::pin(fut::ready(Ok(())));
        }
        let txs = std::mem::take(&mut self.buffer);
        let n = txs.len() as u64;
        let mut extra = WriteBatch::new();
        if let (Some(key), Some(pos)) = (&self.opts.checkpoint_key, self.position) {
            extra.put_state(key.clone(), rmp_serde::to_vec(&pos).unwrap_or_default());
        }
        let stage = self.stage.clone();
        let key = self.opts.key.clone();
        Box::pin(
            async move { stage.transact_with(&key, txs, extra).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    let id = match res {
                        Ok(id) => id,
                        Err(e) => {
                            // What was buffered is not durable: end this incarnation so the
                            // source resumes from the durable checkpoint.
                            tracing::error!(
                                "commit failed: {}",
                                crate::realize::realizer::error_chain(&e)
                            );
                            replikativ_actors::fail(ctx, CollectError::Commit(e.to_string()));
                            return Err(e);
                        }
                    };
                    act.report.send_modify(|r| {
                        r.tweets += n;
                        r.commits += 1;
                        r.buffered = 0;
                        r.last_commit = Some(id);
                    });
                    let r = act.report.borrow().clone();
                    tracing::info!(
                        commit = %id.short(),
                        tweets = r.tweets,
                        commits = r.commits,
                        skipped_lines = r.skipped_lines,
                        "committed {n} tweets"
                    );
                    Ok(())
                }),
        )
    }
}

impl Actor for CollectorActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Ok(mut a) = self.link.addr.lock() {
            *a = Some(ctx.address());
        }
        let every = self.opts.flush;
        // The timer asks through the mailbox, never with `ctx.wait` from the timer itself:
        // actix polls timers after a handler has queued its `AtomicResponse` but before that
        // response starts, and polls queued waits newest first, so a timed flush would commit
        // the buffer's tail (and its checkpoint) before the chunk's earlier full batches. A
        // SIGKILL between the two then lost those batches, and the checkpoint went backwards
        // (tweets collected twice after a restart). Messages are handled in order.
        ctx.run_interval(every, |act, ctx| {
            if !act.buffer.is_empty() && !act.flush_queued {
                act.flush_queued = true;
                ctx.address().do_send(FlushNow);
            }
        });
    }
}

impl Handler<Feed> for CollectorActor {
    type Result = AtomicResponse<Self, Result<(), StageError>>;

    fn handle(&mut self, msg: Feed, _ctx: &mut Context<Self>) -> Self::Result {
        // Take items until the buffer is full; flush; go on with the rest.
        let mut items = msg.0.into_iter();
        let mut chain: ResponseActFuture<Self, Result<(), StageError>> =
            Box::pin(fut::ready(Ok(())));
        let mut skipped = 0u64;
        loop {
            let mut full = false;
            for item in items.by_ref() {
                match item {
                    FeedItem::Tweet { params, after } => {
                        self.buffer.push((ADD_TWEET.to_string(), params));
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
                let out: ResponseActFuture<Self, Result<(), StageError>> = match res {
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
    type Result = AtomicResponse<Self, Result<(), StageError>>;

    fn handle(&mut self, _msg: SourceEnded, _ctx: &mut Context<Self>) -> Self::Result {
        AtomicResponse::new(Box::pin(self.flush().map(|res, act, _ctx| {
            res?;
            act.report.send_modify(|r| r.finished = true);
            Ok(())
        })))
    }
}

impl Handler<FlushNow> for CollectorActor {
    type Result = AtomicResponse<Self, Result<(), StageError>>;

    fn handle(&mut self, _msg: FlushNow, _ctx: &mut Context<Self>) -> Self::Result {
        self.flush_queued = false;
        AtomicResponse::new(self.flush())
    }
}
