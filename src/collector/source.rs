//! `SourceActor`: reads a source on one thread and feeds the collector.
//!
//! A file is read from the collector's latest position (or the durable checkpoint after a
//! crash); standard input and HTTP streams cannot be rewound. Each incarnation has one thread,
//! `source-reader` (`collector/reader.rs`), which reads and parses the source into a bounded
//! channel, and a feeder task on the actor's arbiter (`collector/feeder.rs`), which takes what
//! is ready and feeds it to the collector chunk by chunk, waiting for each [`Feed`] to be taken
//! (a slow store fills the channel and pauses the reader). A read error ends this incarnation;
//! the supervisor restarts it with backoff.
//!
//! [`Feed`]: super::actor::Feed

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::actor::CollectorLink;
use super::reader::Reader;
pub use super::spec::SourceSpec;
use crate::store::Store;
use crate::tweets::SourcePosition;

/// How many tweets the feeder sends per chunk, and how many read tweets wait for it.
pub(super) const CHUNK: usize = 64;
/// How long a halted HTTP source may take to read what was fetched.
pub(super) const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How often a follower looks for appended lines, and a waiting feeder at its stop flags.
pub(super) const FOLLOW_POLL: Duration = Duration::from_millis(200);

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
    /// The reader thread ended without saying why (it panicked).
    #[error("the source's reader thread died")]
    ReaderDied,
    /// The stored checkpoint could not be read.
    #[error("the checkpoint of {path}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::store::checkpoint::CheckpointError,
    },
}

/// The feeder delivered its last chunk (or could not).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct FeedingEnded(Result<(), SourceError>);

/// The actor owning the reader thread and the feeder task.
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
/// earlier incarnation is still feeding.
pub(super) fn start_position(
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
    crate::store::checkpoint::get(store, &key)
        .map(|at| at.unwrap_or(SourcePosition::START))
        .map_err(|source| SourceError::Checkpoint {
            path: path.clone(),
            source,
        })
}

impl Actor for SourceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let drain = matches!(self.spec, SourceSpec::Http { .. });
        let http_pipe = match &self.spec {
            SourceSpec::Http { url, token, tls } => Some(super::http::start_fetcher(
                url.clone(),
                token.clone(),
                tls.http(),
                self.stop.clone(),
                self.link.halted_flag(),
            )),
            _ => None,
        };
        let (events_tx, events) = mpsc::channel(CHUNK);
        let (entered_tx, entered) = oneshot::channel();
        let reader = Reader {
            spec: self.spec.clone(),
            store: self.store.clone(),
            link: self.link.clone(),
            stop: self.stop.clone(),
            http_pipe,
            events: events_tx,
            entered: entered_tx,
        };
        let spawned = std::thread::Builder::new()
            .name("source-reader".into())
            .spawn(move || reader.run());
        if let Err(e) = spawned {
            replikativ_actors::fail(ctx, SourceError::Thread(e));
            return;
        }
        // The feeder is a task of its own, not of this actor's context: like the reader, it
        // outlives a stop of the actor long enough to deliver what was read, and it holds the
        // reader slot until then.
        let feeding =
            super::feeder::run(entered, events, self.link.clone(), self.stop.clone(), drain);
        let me = ctx.address();
        actix_rt::spawn(async move { me.do_send(FeedingEnded(feeding.await)) });
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        self.stop.store(true, Ordering::SeqCst);
        Running::Stop
    }
}

impl Handler<FeedingEnded> for SourceActor {
    type Result = ();

    fn handle(&mut self, msg: FeedingEnded, ctx: &mut Context<Self>) {
        match msg.0 {
            Ok(()) => ctx.stop(),
            Err(e) => replikativ_actors::fail(ctx, e),
        }
    }
}
