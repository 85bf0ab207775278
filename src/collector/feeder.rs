//! The source's feeder: an async task on the source actor's arbiter (no thread of its own)
//! that takes what the reader thread ([`super::reader`]) has read and feeds it to the
//! collector in chunks.
//!
//! A chunk goes out as soon as nothing more is ready, so nothing read waits behind a read that
//! blocks; the next chunk is taken only once the collector has taken this one (backpressure:
//! the bounded channel fills and the reader waits). The feeder holds the reader slot from the
//! reader's hand-over until its last chunk is answered, so a restarted source decides where to
//! start only after everything its predecessor read has been delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix::prelude::*;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout, timeout_at};

use super::actor::{CollectorLink, Feed, FeedItem, SourceEnded};
use super::reader::{Entered, Pumped};
use super::source::{CHUNK, DRAIN_GRACE, FOLLOW_POLL, SourceError};

/// One incarnation's feeding: waits for its reader to hold the reader slot, then feeds until
/// the source ends, fails, stops or is halted. `drain`: a halted source reads what it already
/// fetched to its end (HTTP), for at most [`DRAIN_GRACE`].
pub(super) async fn run(
    entered: oneshot::Receiver<Result<Option<Entered>, SourceError>>,
    events: mpsc::Receiver<Pumped>,
    link: CollectorLink,
    stop: Arc<AtomicBool>,
    drain: bool,
) -> Result<(), SourceError> {
    let entered = match entered.await {
        Ok(Ok(Some(entered))) => entered,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(SourceError::ReaderDied),
    };
    // Dropped (the slot freed) only once this feeder has returned.
    let _slot = entered.slot;
    Feeder {
        feed: entered.feed,
        end: entered.end,
        link,
        stop,
        drain,
    }
    .feed(events)
    .await
}

/// Where a feeder sends its chunks, and what tells it to stop.
struct Feeder {
    feed: Recipient<Feed>,
    end: Recipient<SourceEnded>,
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

    async fn send(&self, chunk: Vec<FeedItem>) -> Result<(), SourceError> {
        if chunk.is_empty() {
            return Ok(());
        }
        match self.feed.send(Feed(chunk)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SourceError::Collector(e)),
            Err(_) => Err(SourceError::CollectorGone),
        }
    }

    async fn end(&self) -> Result<(), SourceError> {
        match self.end.send(SourceEnded).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SourceError::Collector(e)),
            Err(_) => Err(SourceError::CollectorGone),
        }
    }

    /// The reader ended without saying why: it was stopped, or it died.
    fn reader_gone(&self) -> Pumped {
        if self.stop.load(Ordering::SeqCst) {
            Pumped::End
        } else {
            Pumped::Failed(SourceError::ReaderDied)
        }
    }

    /// Feeds events in chunks; at the end (unless following) tells the collector. When
    /// stopped or halted it feeds what is already read (standard input and HTTP cannot read
    /// it again) and returns.
    async fn feed(&self, mut events: mpsc::Receiver<Pumped>) -> Result<(), SourceError> {
        let mut chunk = Vec::with_capacity(CHUNK);
        loop {
            if self.stopping() {
                if self.drain && !self.stop.load(Ordering::SeqCst) {
                    // Halted: the fetcher has ended its stream; read what it fetched to its
                    // end.
                    let deadline = Instant::now() + DRAIN_GRACE;
                    while let Ok(Some(Pumped::Item(item))) =
                        timeout_at(deadline, events.recv()).await
                    {
                        chunk.push(item);
                    }
                } else {
                    // Take what is already read, without waiting for more (a file is read
                    // again from its checkpoint; standard input may never end).
                    while let Ok(Pumped::Item(item)) = events.try_recv() {
                        chunk.push(item);
                    }
                }
                return self.send(chunk).await;
            }
            let next = match events.try_recv() {
                Ok(next) => next,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing ready: feed what we hold before waiting for the source.
                    self.send(std::mem::take(&mut chunk)).await?;
                    match timeout(FOLLOW_POLL, events.recv()).await {
                        Ok(Some(next)) => next,
                        Ok(None) => self.reader_gone(),
                        Err(_) => continue,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => self.reader_gone(),
            };
            match next {
                Pumped::Item(item) => {
                    chunk.push(item);
                    if chunk.len() >= CHUNK {
                        self.send(std::mem::take(&mut chunk)).await?;
                    }
                }
                Pumped::End => {
                    self.send(std::mem::take(&mut chunk)).await?;
                    if self.stopping() {
                        return Ok(());
                    }
                    return self.end().await;
                }
                Pumped::Failed(e) => {
                    // What was read before the error is fed (stdin and HTTP cannot re-read it).
                    self.send(std::mem::take(&mut chunk)).await?;
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::sync::watch;

    use super::*;
    use crate::collector::actor::CommitFailed;

    /// What the stand-in collector was given, in order.
    #[derive(Debug, PartialEq)]
    enum Got {
        Tweet(String),
        Ended,
    }

    /// A stand-in collector: records what it is fed, and answers a chunk only while its gate
    /// is open.
    struct Taker {
        got: Arc<Mutex<Vec<Got>>>,
        gate: watch::Receiver<bool>,
    }

    impl Actor for Taker {
        type Context = Context<Self>;
    }

    impl Handler<Feed> for Taker {
        type Result = ResponseFuture<Result<(), CommitFailed>>;

        fn handle(&mut self, msg: Feed, _ctx: &mut Context<Self>) -> Self::Result {
            let mut got = self.got.lock().expect("lock");
            for item in msg.0 {
                if let FeedItem::Tweet { id, .. } = item {
                    got.push(Got::Tweet(id));
                }
            }
            let mut gate = self.gate.clone();
            Box::pin(async move {
                let _ = gate.wait_for(|open| *open).await;
                Ok(())
            })
        }
    }

    impl Handler<SourceEnded> for Taker {
        type Result = Result<(), CommitFailed>;

        fn handle(&mut self, _msg: SourceEnded, _ctx: &mut Context<Self>) -> Self::Result {
            self.got.lock().expect("lock").push(Got::Ended);
            Ok(())
        }
    }

    /// A running feeder, its reader's end of the channel and what its collector got.
    struct Setup {
        link: CollectorLink,
        events: mpsc::Sender<Pumped>,
        got: Arc<Mutex<Vec<Got>>>,
        gate: watch::Sender<bool>,
        feeding: tokio::task::JoinHandle<Result<(), SourceError>>,
    }

    /// Starts a feeder as a reader would: holding the slot, handed over with the collector.
    fn start(drain: bool, gate_open: bool) -> Setup {
        let link = CollectorLink::default();
        let slot = link.enter_reader();
        let got = Arc::new(Mutex::new(Vec::new()));
        let (gate, gate_rx) = watch::channel(gate_open);
        let taker = Taker {
            got: got.clone(),
            gate: gate_rx,
        }
        .start();
        let (events, events_rx) = mpsc::channel(CHUNK);
        let (entered, entered_rx) = oneshot::channel();
        entered
            .send(Ok(Some(Entered {
                slot,
                feed: taker.clone().recipient(),
                end: taker.recipient(),
            })))
            .map_err(|_| ())
            .expect("the feeder waits");
        let stop = Arc::new(AtomicBool::new(false));
        let feeding = actix_rt::spawn(run(entered_rx, events_rx, link.clone(), stop, drain));
        Setup {
            link,
            events,
            got,
            gate,
            feeding,
        }
    }

    fn tweet(id: &str) -> Pumped {
        Pumped::Item(FeedItem::Tweet {
            id: id.to_string(),
            params: Vec::new(),
            after: None,
        })
    }

    fn tweets(ids: &[&str]) -> Vec<Got> {
        ids.iter().map(|id| Got::Tweet(id.to_string())).collect()
    }

    /// Waits (30 s at most) until `cond` holds.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn ended(feeding: tokio::task::JoinHandle<Result<(), SourceError>>) -> String {
        match timeout(Duration::from_secs(30), feeding).await {
            Ok(Ok(Ok(()))) => "ok".into(),
            Ok(Ok(Err(e))) => format!("error: {e}"),
            Ok(Err(e)) => format!("the feeder panicked: {e}"),
            Err(_) => "the feeder did not end".into(),
        }
    }

    /// Regression (`collect --source -` committed nothing on SIGTERM while its stdin stayed
    /// open): what was read is fed while the next read blocks, and a halt ends the feeder and
    /// frees the reader slot although the reader never returns.
    #[test]
    fn tweets_read_before_a_read_that_blocks_are_fed_and_a_halt_frees_the_slot() {
        actix_rt::System::new().block_on(async {
            let s = start(false, true);
            for id in ["a", "b", "c"] {
                s.events.send(tweet(id)).await.expect("feeder alive");
            }
            let got = s.got.clone();
            until("the three tweets are fed", || {
                *got.lock().expect("lock") == tweets(&["a", "b", "c"])
            })
            .await;
            assert_eq!(
                s.link.readers(),
                1,
                "the slot is held while the source reads"
            );
            s.link.halt();
            assert_eq!(ended(s.feeding).await, "ok");
            assert_eq!(s.link.readers(), 0, "a halted feeder frees the slot");
            assert_eq!(*s.got.lock().expect("lock"), tweets(&["a", "b", "c"]));
        });
    }

    /// A restarted source must not feed tweets twice: its reader may decide where to start
    /// only after the previous incarnation's last chunk was taken, so the feeder (not the
    /// reader thread) holds the slot until then.
    #[test]
    fn the_slot_is_held_until_the_last_chunk_is_answered_and_the_end_comes_after_it() {
        actix_rt::System::new().block_on(async {
            let s = start(false, false);
            for event in [tweet("a"), tweet("b"), Pumped::End] {
                s.events.send(event).await.expect("feeder alive");
            }
            let got = s.got.clone();
            until("the chunk reaches the collector", || {
                *got.lock().expect("lock") == tweets(&["a", "b"])
            })
            .await;
            let (entered, next) = std::sync::mpsc::channel();
            let link = s.link.clone();
            let successor = std::thread::spawn(move || {
                let _slot = link.enter_reader();
                entered.send(()).expect("test alive");
            });
            let link = s.link.clone();
            until("the successor waits", || link.readers() == 2).await;
            assert!(
                next.try_recv().is_err(),
                "the successor entered while the last chunk was unanswered"
            );
            s.gate.send(true).expect("taker alive");
            assert_eq!(ended(s.feeding).await, "ok");
            let mut want = tweets(&["a", "b"]);
            want.push(Got::Ended);
            assert_eq!(*s.got.lock().expect("lock"), want);
            until("the successor enters", || successor.is_finished()).await;
            successor.join().expect("successor");
            assert!(next.try_recv().is_ok(), "the successor entered");
            assert_eq!(s.link.readers(), 0);
        });
    }

    /// Backpressure: while the collector has not taken a chunk, the feeder reads nothing
    /// more, so the reader can queue only the channel's bound.
    #[test]
    fn an_unanswered_chunk_pauses_the_reader_at_the_channels_bound() {
        actix_rt::System::new().block_on(async {
            let s = start(false, false);
            s.events.send(tweet("first")).await.expect("feeder alive");
            let got = s.got.clone();
            until("the first chunk is out", || {
                got.lock().expect("lock").len() == 1
            })
            .await;
            for n in 0..CHUNK {
                s.events
                    .try_send(tweet(&n.to_string()))
                    .unwrap_or_else(|e| panic!("room for read tweet {n}: {e}"));
            }
            assert!(
                matches!(
                    s.events.try_send(tweet("over")),
                    Err(mpsc::error::TrySendError::Full(_))
                ),
                "the channel holds at most {CHUNK} read tweets"
            );
            s.gate.send(true).expect("taker alive");
            s.events.send(Pumped::End).await.expect("feeder alive");
            assert_eq!(ended(s.feeding).await, "ok");
            let got = s.got.lock().expect("lock");
            assert_eq!(got.len(), 1 + CHUNK + 1, "every tweet, then the end");
            assert_eq!(got.last(), Some(&Got::Ended));
        });
    }

    /// A halted HTTP source reads what was fetched to the end of its stream, also beyond
    /// what was queued when it was halted.
    #[test]
    fn a_halted_draining_source_feeds_its_stream_to_the_end() {
        actix_rt::System::new().block_on(async {
            let s = start(true, true);
            s.link.halt();
            let ids: Vec<String> = (0..CHUNK * 2).map(|n| n.to_string()).collect();
            for id in &ids {
                s.events
                    .send(tweet(id))
                    .await
                    .expect("a draining feeder keeps reading");
            }
            drop(s.events);
            assert_eq!(ended(s.feeding).await, "ok");
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            assert_eq!(*s.got.lock().expect("lock"), tweets(&ids), "no end: halted");
            assert_eq!(s.link.readers(), 0);
        });
    }

    #[test]
    fn a_reader_that_dies_is_reported() {
        actix_rt::System::new().block_on(async {
            let s = start(false, true);
            s.events.send(tweet("a")).await.expect("feeder alive");
            drop(s.events);
            assert_eq!(
                ended(s.feeding).await,
                format!("error: {}", SourceError::ReaderDied)
            );
            assert_eq!(*s.got.lock().expect("lock"), tweets(&["a"]));
            assert_eq!(s.link.readers(), 0);
        });
    }
}
