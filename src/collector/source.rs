//! `SourceActor`: reads a source on its own thread and feeds the collector.
//!
//! A file is read from the collector's latest position (or the durable checkpoint after a
//! crash); standard input and HTTP streams cannot be rewound. The reader thread blocks on
//! each [`Feed`] until the collector has taken it (a slow store pauses the source). A read
//! error ends this incarnation; the supervisor restarts it with backoff.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use actix::prelude::*;

use super::actor::{CollectorActor, CollectorLink, Feed, FeedItem, SourceEnded};
pub use super::spec::SourceSpec;
use crate::store::Store;
use crate::tweets::{SourceEvent, SourcePosition, TweetCursor, encode_params, open_file_at};

/// How many tweets a reader sends per chunk.
const CHUNK: usize = 64;
/// How long a halted HTTP source may take to read what was fetched.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How often a follower looks for appended lines.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Why a source incarnation ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Opening or reading the file failed.
    #[error("reading {path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Reading standard input failed.
    #[error("reading standard input")]
    Stdin(#[source] std::io::Error),
    /// Reading the HTTP stream failed.
    #[error("reading the HTTP stream")]
    Http(#[source] std::io::Error),
    /// The collector refused a chunk (its commit failed).
    #[error("the collector could not commit")]
    Collector(#[source] super::actor::CommitFailed),
    /// The collector is gone.
    #[error("the collector stopped")]
    CollectorGone,
    /// The reader thread could not be started.
    #[error("cannot start the reader thread")]
    Thread(#[source] std::io::Error),
    /// The stored checkpoint is damaged.
    #[error("the stored checkpoint of {path} is damaged")]
    Checkpoint {
        /// The file.
        path: PathBuf,
    },
}

/// The reader thread ended.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct ReaderEnded(Result<(), SourceError>);

/// The actor owning the reader thread.
pub struct SourceActor {
    spec: SourceSpec,
    store: Store,
    link: CollectorLink,
    stop: Arc<AtomicBool>,
}

impl SourceActor {
    /// A source feeding `collector`.
    pub fn new(spec: SourceSpec, store: Store, link: CollectorLink) -> SourceActor {
        SourceActor {
            spec,
            store,
            link,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Where a file source starts: after what the current collector already took, else the
/// durable checkpoint, else the start. Called by a reader that holds the reader slot, so no
/// earlier reader is still feeding.
fn start_position(
    spec: &SourceSpec,
    store: &Store,
    link: &CollectorLink,
) -> Result<SourcePosition, SourceError> {
    if let Some(p) = link.fed() {
        return Ok(p);
    }
    let (SourceSpec::File { path, .. }, Some(key)) = (spec, spec.checkpoint_key()) else {
        return Ok(SourcePosition::START);
    };
    match store.get_state(&key) {
        Ok(Some(raw)) => {
            rmp_serde::from_slice(&raw).map_err(|_| SourceError::Checkpoint { path: path.clone() })
        }
        Ok(None) => Ok(SourcePosition::START),
        Err(_) => Err(SourceError::Checkpoint { path: path.clone() }),
    }
}

impl Actor for SourceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let link = self.link.clone();
        let stop = self.stop.clone();
        let spec = self.spec.clone();
        let store = self.store.clone();
        let http_pipe = match &spec {
            SourceSpec::Http { url, token, tls } => Some(super::http::start_fetcher(
                url.clone(),
                token.clone(),
                tls.http(),
                stop.clone(),
                link.halted_flag(),
            )),
            _ => None,
        };
        let spawned = std::thread::Builder::new()
            .name("source-reader".into())
            .spawn(move || {
                // Wait for an earlier incarnation's reader to deliver its last chunk, then
                // decide where to start: never two readers feeding the same tweets.
                let _slot = link.enter_reader();
                let result = run_reader(spec, &store, &link, &stop, http_pipe);
                me.do_send(ReaderEnded(result));
            });
        if let Err(e) = spawned {
            replikativ_actors::fail(ctx, SourceError::Thread(e));
        }
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        self.stop.store(true, Ordering::SeqCst);
        Running::Stop
    }
}

impl Handler<ReaderEnded> for SourceActor {
    type Result = ();

    fn handle(&mut self, msg: ReaderEnded, ctx: &mut Context<Self>) {
        match msg.0 {
            Ok(()) => ctx.stop(),
            Err(e) => replikativ_actors::fail(ctx, e),
        }
    }
}

/// One reader's life: find where to start, bind to the current collector, read and feed.
fn run_reader(
    spec: SourceSpec,
    store: &Store,
    link: &CollectorLink,
    stop: &Arc<AtomicBool>,
    http_pipe: Option<super::http::PipeReader>,
) -> Result<(), SourceError> {
    if link.halted() {
        return Ok(());
    }
    let start = start_position(&spec, store, link)?;
    // A reader feeds the collector incarnation it started with, and only that one: after a
    // collector restart its successor's source starts from the durable checkpoint.
    let collector = link.addr().ok_or(SourceError::CollectorGone)?;
    let feeder = Feeder {
        collector,
        link: link.clone(),
        stop: stop.clone(),
        drain: matches!(spec, SourceSpec::Http { .. }),
    };
    match spec {
        SourceSpec::File { path, follow } => {
            tracing::info!(path = %path.display(), offset = start.offset, line = start.line, tweets_done = start.tweets_done, "reading source");
            let cursor = open_file_at(&path, start).map_err(|source| SourceError::File {
                path: path.clone(),
                source,
            })?;
            read(cursor.follow(follow), true, follow, &feeder).map_err(|e| match e {
                ReadError::Io(source) => SourceError::File { path, source },
                ReadError::Other(e) => e,
            })
        }
        SourceSpec::Stdin => {
            let cursor = TweetCursor::new(BufReader::new(std::io::stdin()), SourcePosition::START);
            read(cursor, false, false, &feeder).map_err(|e| match e {
                ReadError::Io(source) => SourceError::Stdin(source),
                ReadError::Other(e) => e,
            })
        }
        SourceSpec::Http { .. } => match http_pipe {
            Some(pipe) => {
                let cursor = TweetCursor::new(pipe, SourcePosition::START).follow(true);
                read(cursor, false, true, &feeder).map_err(|e| match e {
                    ReadError::Io(source) => SourceError::Http(source),
                    ReadError::Other(e) => e,
                })
            }
            None => Ok(()),
        },
    }
}

/// Where a reader sends its chunks, and what tells it to stop.
struct Feeder {
    collector: Addr<CollectorActor>,
    link: CollectorLink,
    stop: Arc<AtomicBool>,
    /// Halting reads what the source already fetched to its end (HTTP).
    drain: bool,
}

impl Feeder {
    /// Stopped (the source actor stops) or halted (the command is exiting).
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.link.halted()
    }

    fn send(&self, chunk: Vec<FeedItem>) -> Result<(), ReadError> {
        if chunk.is_empty() {
            return Ok(());
        }
        match futures_executor::block_on(self.collector.send(Feed(chunk))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ReadError::Other(SourceError::Collector(e))),
            Err(_) => Err(ReadError::Other(SourceError::CollectorGone)),
        }
    }

    fn end(&self) -> Result<(), ReadError> {
        match futures_executor::block_on(self.collector.send(SourceEnded)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ReadError::Other(SourceError::Collector(e))),
            Err(_) => Err(ReadError::Other(SourceError::CollectorGone)),
        }
    }
}

enum ReadError {
    Io(std::io::Error),
    Other(SourceError),
}

/// What the pump thread hands the feeder.
enum Pumped {
    Event(SourceEvent),
    /// The source ended (not following).
    End,
    Failed(std::io::Error),
}

/// Reads the cursor on its own thread into a bounded channel. The feeder must not hold
/// tweets while a read blocks: a stdin or HTTP read can block indefinitely, and tweets
/// read but never fed would be lost at SIGTERM (regression: `collect --source -` committed
/// nothing on SIGTERM while its stdin stayed open).
/// A halted source that drains (HTTP) ends at the end of what was fetched.
fn pump<R: BufRead + Send + 'static>(
    mut cursor: TweetCursor<R>,
    follow: bool,
    stop: Arc<AtomicBool>,
    drain: Option<Arc<AtomicBool>>,
) -> Result<mpsc::Receiver<Pumped>, ReadError> {
    let (tx, rx) = mpsc::sync_channel(CHUNK);
    let halted = move || drain.as_ref().is_some_and(|h| h.load(Ordering::SeqCst));
    std::thread::Builder::new()
        .name("source-pump".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let out = match cursor.next_event() {
                    Ok(Some(SourceEvent::Pending { .. })) | Ok(None) if follow && !halted() => {
                        std::thread::sleep(FOLLOW_POLL);
                        continue;
                    }
                    Ok(Some(SourceEvent::Pending { .. })) | Ok(None) => Pumped::End,
                    Ok(Some(event)) => Pumped::Event(event),
                    Err(e) => Pumped::Failed(e),
                };
                let last = !matches!(out, Pumped::Event(_));
                if tx.send(out).is_err() || last {
                    return;
                }
            }
        })
        .map_err(|e| ReadError::Other(SourceError::Thread(e)))?;
    Ok(rx)
}

/// The pump thread ended without saying why: it was stopped, or it died.
fn pump_gone(stop: &AtomicBool) -> Pumped {
    if stop.load(Ordering::SeqCst) {
        Pumped::End
    } else {
        Pumped::Failed(std::io::Error::other("the source reader thread died"))
    }
}

/// Reads events and feeds them in chunks; at the end (unless following) tells the collector.
/// A chunk is fed as soon as no further event is ready, so nothing waits behind a read. When
/// stopped or halted it feeds what is already read (standard input and HTTP cannot read it
/// again) and returns.
fn read<R: BufRead + Send + 'static>(
    cursor: TweetCursor<R>,
    positioned: bool,
    follow: bool,
    feeder: &Feeder,
) -> Result<(), ReadError> {
    let drain = feeder.drain.then(|| feeder.link.halted_flag());
    let events = pump(cursor, follow, feeder.stop.clone(), drain)?;
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        if feeder.stopping() {
            if feeder.drain && !feeder.stop.load(Ordering::SeqCst) {
                // Halted: the fetcher has ended its stream; read what it fetched to its end.
                let deadline = std::time::Instant::now() + DRAIN_GRACE;
                while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                    match events.recv_timeout(left) {
                        Ok(Pumped::Event(event)) => push_event(&mut chunk, event, positioned),
                        Ok(_) | Err(_) => break,
                    }
                }
            } else {
                // Take what the pump has already read, without waiting for more (a file is
                // read again from its checkpoint; standard input may never end).
                while let Ok(Pumped::Event(event)) = events.try_recv() {
                    push_event(&mut chunk, event, positioned);
                }
            }
            return feeder.send(chunk);
        }
        let next = match events.try_recv() {
            Ok(next) => next,
            Err(mpsc::TryRecvError::Empty) => {
                // Nothing ready: feed what we hold before waiting for the source.
                feeder.send(std::mem::take(&mut chunk))?;
                match events.recv_timeout(FOLLOW_POLL) {
                    Ok(next) => next,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => pump_gone(&feeder.stop),
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => pump_gone(&feeder.stop),
        };
        match next {
            Pumped::Event(event) => {
                push_event(&mut chunk, event, positioned);
                if chunk.len() >= CHUNK {
                    feeder.send(std::mem::take(&mut chunk))?;
                }
            }
            Pumped::End => {
                feeder.send(std::mem::take(&mut chunk))?;
                if feeder.stopping() {
                    return Ok(());
                }
                break;
            }
            Pumped::Failed(e) => {
                // What was read before the error is fed (stdin and HTTP cannot re-read it).
                feeder.send(std::mem::take(&mut chunk))?;
                return Err(ReadError::Io(e));
            }
        }
    }
    feeder.end()
}

/// Adds one source event to the chunk being built.
fn push_event(chunk: &mut Vec<FeedItem>, event: SourceEvent, positioned: bool) {
    match event {
        SourceEvent::Tweet { record, after } => chunk.push(FeedItem::Tweet {
            params: encode_params(&record.params),
            id: record.id,
            after: positioned.then_some(after),
        }),
        SourceEvent::Skipped {
            line,
            reason,
            after,
            ..
        } => {
            tracing::warn!(line, %reason, "skipping source line {line}: {reason}");
            chunk.push(FeedItem::Skipped {
                after: positioned.then_some(after),
            });
        }
        SourceEvent::Pending { .. } => {}
    }
}
