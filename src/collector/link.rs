//! [`CollectorLink`]: what the collector and its source share across their incarnations.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use actix::prelude::*;
use replikativ_actors::Slot;

use super::actor::CollectorActor;
use crate::tweets::SourcePosition;

/// Where the current collector incarnation is, how far it has been fed, and the source
/// incarnations still reading or feeding. Shared by the collector (which registers itself on
/// start) and the source (which feeds it and resumes after what it fed).
#[derive(Clone, Default)]
pub struct CollectorLink {
    addr: Slot<CollectorActor>,
    fed: Arc<Mutex<Option<SourcePosition>>>,
    halted: Arc<AtomicBool>,
    /// Taken by a source incarnation from when its reader starts until its feeder has
    /// delivered its last chunk: a new incarnation's reader waits for the previous one to
    /// deliver its last chunk before it decides where to start.
    reader: Arc<(Mutex<bool>, Condvar)>,
    readers: Arc<AtomicUsize>,
}

impl CollectorLink {
    /// The current collector, if one is running.
    pub fn addr(&self) -> Option<Addr<CollectorActor>> {
        self.addr.get()
    }

    /// Where the runtime publishes each collector incarnation as it starts (give it to the
    /// collector's child spec).
    pub fn slot(&self) -> Slot<CollectorActor> {
        self.addr.clone()
    }

    /// The position after the last tweet fed to the current collector.
    pub fn fed(&self) -> Option<SourcePosition> {
        self.fed.lock().ok().and_then(|p| *p)
    }

    pub(super) fn set_fed(&self, pos: Option<SourcePosition>) {
        if let Ok(mut p) = self.fed.lock() {
            *p = pos;
        }
    }

    /// Stops the source for good: its feeder feeds what was already read and ends (before a
    /// final flush at SIGTERM, so nothing read is left behind uncommitted).
    pub fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
    }

    /// The flag [`halt`](Self::halt) sets, for threads and tasks that poll it.
    pub(crate) fn halted_flag(&self) -> Arc<AtomicBool> {
        self.halted.clone()
    }

    /// Whether [`halt`](Self::halt) was called.
    pub fn halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Source incarnations holding or waiting for the reader slot (0 once a halted source
    /// has fed its last chunk).
    pub fn readers(&self) -> usize {
        self.readers.load(Ordering::SeqCst)
    }

    /// Registers a source incarnation's reader: waits until the previous incarnation has
    /// released the slot (its feeder may still be delivering its last chunk), then holds the
    /// reader slot until the returned guard drops. A reader decides where to start only once
    /// it holds the slot; it hands the guard to its feeder, which drops it after its last
    /// chunk.
    pub(crate) fn enter_reader(&self) -> ReaderGuard {
        self.readers.fetch_add(1, Ordering::SeqCst);
        let (busy, freed) = &*self.reader;
        let mut taken = busy.lock().unwrap_or_else(|p| p.into_inner());
        while *taken {
            taken = freed.wait(taken).unwrap_or_else(|p| p.into_inner());
        }
        *taken = true;
        ReaderGuard { link: self.clone() }
    }
}

/// A source incarnation's hold on the reader slot (see [`CollectorLink::enter_reader`]).
pub(crate) struct ReaderGuard {
    link: CollectorLink,
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        let (busy, freed) = &*self.link.reader;
        *busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        freed.notify_all();
        self.link.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Regression (tweets committed twice after a source restart): a restarted source's
    /// reader decided where to start while its predecessor was still delivering a chunk, so
    /// both fed the same tweets. A reader now waits for the previous one to end.
    #[test]
    fn a_new_reader_waits_until_the_previous_reader_has_delivered_and_ended() {
        let link = CollectorLink::default();
        let first = link.enter_reader();
        let (entered, rx) = std::sync::mpsc::channel();
        let second = link.clone();
        let handle = std::thread::spawn(move || {
            let _slot = second.enter_reader();
            entered.send(()).expect("test alive");
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second reader entered while the first still ran"
        );
        assert_eq!(link.readers(), 2, "both are counted while one waits");
        drop(first);
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the second reader enters once the first has ended");
        handle.join().expect("second reader");
        assert_eq!(link.readers(), 0);
    }

    #[test]
    fn a_halted_link_says_so() {
        let link = CollectorLink::default();
        assert!(!link.halted());
        link.clone().halt();
        assert!(link.halted());
    }
}
