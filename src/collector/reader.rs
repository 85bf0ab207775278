//! The source's one thread, `source-reader`: waits for the reader slot, decides where to
//! start, hands the slot to its feeder ([`super::feeder`]), then reads the source into a
//! bounded channel, one event at a time.
//!
//! Each tweet goes into the channel as soon as it is parsed, so nothing read waits behind the
//! next read: a stdin or HTTP read can block indefinitely, and tweets read but not yet handed
//! on would be lost at SIGTERM (regression: `collect --source -` committed nothing on SIGTERM
//! while its stdin stayed open). A full channel blocks the thread: a slow store pauses reading.

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::actor::{CollectorLink, Feed, FeedItem, SourceEnded};
use super::file_watch::FileWatch;
use super::http::PipeReader;
use super::link::ReaderGuard;
use super::source::{FOLLOW_POLL, SourceError, SourceSpec, start_position};
use crate::store::Store;
use crate::tweets::{SourceEvent, SourcePosition, TweetCursor, encode_params, open_file_at};

/// What the reader thread hands the feeder, in order.
#[derive(Debug)]
pub(super) enum Pumped {
    /// A tweet or a skipped line.
    Item(FeedItem),
    /// The source ended (not following).
    End,
    /// Reading failed; what came before was handed on.
    Failed(SourceError),
}

/// What a reader hands its feeder once it holds the reader slot and knows where it starts.
pub(super) struct Entered {
    /// The reader slot: the feeder drops it once it has delivered its last chunk.
    pub slot: ReaderGuard,
    /// The collector incarnation this reader started with, and only that one: after a
    /// collector restart its successor's source starts from the durable checkpoint.
    pub feed: Recipient<Feed>,
    /// The same collector, told when the source has ended.
    pub end: Recipient<SourceEnded>,
}

/// Where the reader starts: `Ok(None)` when it has nothing to read (halted or stopped before
/// it started, or no HTTP pipe).
pub(super) type EnteredTx = oneshot::Sender<Result<Option<Entered>, SourceError>>;

/// One incarnation's reader thread, before it runs.
pub(super) struct Reader {
    pub spec: SourceSpec,
    pub store: Store,
    pub link: CollectorLink,
    pub stop: Arc<AtomicBool>,
    pub http_pipe: Option<PipeReader>,
    pub events: mpsc::Sender<Pumped>,
    pub entered: EnteredTx,
}

impl Reader {
    /// The thread's body: wait for an earlier incarnation to deliver its last chunk (it holds
    /// the reader slot until then), decide where to start, hand the slot on, read.
    pub(super) fn run(self) {
        let Reader {
            spec,
            store,
            link,
            stop,
            http_pipe,
            events,
            entered,
        } = self;
        let slot = link.enter_reader();
        if link.halted() || stop.load(Ordering::SeqCst) {
            let _ = entered.send(Ok(None));
            return;
        }
        let start = match start_position(&spec, &store, &link) {
            Ok(start) => start,
            Err(e) => {
                let _ = entered.send(Err(e));
                return;
            }
        };
        let Some(collector) = link.addr() else {
            let _ = entered.send(Err(SourceError::CollectorGone));
            return;
        };
        let hand_on = |entered: EnteredTx| {
            entered
                .send(Ok(Some(Entered {
                    slot,
                    feed: collector.clone().recipient(),
                    end: collector.recipient(),
                })))
                .is_ok()
        };
        let pump = Pump {
            link: &link,
            stop: &stop,
            events: &events,
        };
        match spec {
            SourceSpec::File { path, follow } => {
                tracing::info!(path = %path.display(), offset = start.offset, line = start.line, tweets_done = start.tweets_done, "reading source");
                let cursor = match open_file_at(&path, start) {
                    Ok(cursor) => cursor,
                    Err(source) => {
                        let _ = entered.send(Err(SourceError::File { path, source }));
                        return;
                    }
                };
                // Watched before the first read, so no append after it goes unnoticed.
                let watch = if follow {
                    FileWatch::new(&path)
                } else {
                    FileWatch::polling()
                };
                if hand_on(entered) {
                    pump.run(
                        cursor.follow(follow),
                        true,
                        follow,
                        false,
                        watch,
                        |source| SourceError::File {
                            path: path.clone(),
                            source,
                        },
                    );
                }
            }
            SourceSpec::Stdin => {
                let stdin = BufReader::new(std::io::stdin());
                if hand_on(entered) {
                    let cursor = TweetCursor::new(stdin, SourcePosition::START);
                    let watch = FileWatch::polling();
                    pump.run(cursor, false, false, false, watch, SourceError::Stdin);
                }
            }
            SourceSpec::Http { .. } => match http_pipe {
                Some(pipe) => {
                    if hand_on(entered) {
                        let cursor = TweetCursor::new(pipe, SourcePosition::START).follow(true);
                        let watch = FileWatch::polling();
                        pump.run(cursor, false, true, true, watch, SourceError::Http);
                    }
                }
                None => {
                    let _ = entered.send(Ok(None));
                }
            },
        }
    }
}

/// The reading loop's view of its incarnation.
struct Pump<'a> {
    link: &'a CollectorLink,
    stop: &'a AtomicBool,
    events: &'a mpsc::Sender<Pumped>,
}

impl Pump<'_> {
    /// Reads `cursor` into the channel until the source ends or fails, or the incarnation
    /// stops. A following reader waits for more at the end, unless it is a halted source that
    /// drains (HTTP), which ends at the end of what was fetched.
    fn run<R: BufRead>(
        &self,
        mut cursor: TweetCursor<R>,
        positioned: bool,
        follow: bool,
        drain: bool,
        mut watch: FileWatch,
        error: impl Fn(std::io::Error) -> SourceError,
    ) {
        let halted = || drain && self.link.halted();
        while !self.stop.load(Ordering::SeqCst) {
            let out = match cursor.next_event() {
                Ok(Some(SourceEvent::Pending { .. })) | Ok(None) if follow && !halted() => {
                    if self.events.is_closed() {
                        return;
                    }
                    watch.wait(FOLLOW_POLL);
                    continue;
                }
                Ok(Some(SourceEvent::Pending { .. })) | Ok(None) => Pumped::End,
                Ok(Some(event)) => match feed_item(event, positioned) {
                    Some(item) => Pumped::Item(item),
                    None => continue,
                },
                Err(e) => Pumped::Failed(error(e)),
            };
            let last = !matches!(out, Pumped::Item(_));
            if self.events.blocking_send(out).is_err() || last {
                return;
            }
        }
    }
}

/// The item a source event feeds (none for `Pending`). A file's items carry the position
/// after them.
fn feed_item(event: SourceEvent, positioned: bool) -> Option<FeedItem> {
    match event {
        SourceEvent::Tweet { record, after } => Some(FeedItem::Tweet {
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
            Some(FeedItem::Skipped {
                after: positioned.then_some(after),
            })
        }
        SourceEvent::Pending { .. } => None,
    }
}
