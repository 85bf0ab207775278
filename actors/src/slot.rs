//! [`Slot`]: where the current incarnation of a child is.
//!
//! A restarted child is a new actor with a new `Addr`. A slot is filled by the runtime the
//! moment an incarnation starts (before its supervisor answers), so a caller holding the slot
//! reaches the current incarnation with one lock read, never a round trip to a supervisor.
//! While a child is between incarnations [`Slot::get`] answers `None` and [`Slot::wait`]
//! waits for the next one, with a deadline.

use std::fmt;
use std::time::Duration;

use actix::{Actor, Addr};

use crate::watch_cell::WatchCell;

/// The current incarnation of one child (see the module docs). Cheap to clone; clones share.
pub struct Slot<A: Actor> {
    cell: WatchCell<Option<Addr<A>>>,
}

impl<A: Actor> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Slot {
            cell: self.cell.clone(),
        }
    }
}

impl<A: Actor> Default for Slot<A> {
    fn default() -> Self {
        Slot::new()
    }
}

impl<A: Actor> fmt::Debug for Slot<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("running", &self.get().is_some())
            .finish()
    }
}

/// The incarnation in `slot` if it is running and is not `old`.
fn running<A: Actor>(slot: &Option<Addr<A>>, old: Option<&Addr<A>>) -> Option<Addr<A>> {
    slot.as_ref()
        .filter(|a| a.connected() && old != Some(*a))
        .cloned()
}

impl<A: Actor> Slot<A> {
    /// An empty slot, filled when the child it is given to starts.
    pub fn new() -> Slot<A> {
        Slot {
            cell: WatchCell::new(None),
        }
    }

    /// The running incarnation, if there is one.
    pub fn get(&self) -> Option<Addr<A>> {
        self.cell.read(|slot| running(slot, None))
    }

    /// The running incarnation, waiting up to `timeout` for one to start (a restart with
    /// backoff in progress). `None` when none started in time.
    pub async fn wait(&self, timeout: Duration) -> Option<Addr<A>> {
        if let Some(addr) = self.get() {
            return Some(addr);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // A stopped incarnation leaves its address in the slot until the next one fills
            // it, and stopping does not touch the slot: look again now and then.
            let tick = tokio::time::Instant::now() + Duration::from_millis(20);
            let next = self.cell.wait_for(|slot| running(slot, None));
            match tokio::time::timeout_at(deadline.min(tick), next).await {
                Ok(addr) => return Some(addr),
                Err(_) if tokio::time::Instant::now() >= deadline => return self.get(),
                Err(_) => {}
            }
        }
    }

    /// The next running incarnation after `old` (e.g. the successor of an incarnation that
    /// just failed), waiting up to `timeout` for it to start. Yields to the runtime while it
    /// waits, so the supervisor can start it.
    pub async fn wait_next(&self, old: &Addr<A>, timeout: Duration) -> Option<Addr<A>> {
        let next = self.cell.wait_for(|slot| running(slot, Some(old)));
        tokio::time::timeout(timeout, next).await.ok()
    }

    /// Publishes a new incarnation (the runtime calls this when it starts one).
    pub(crate) fn fill(&self, addr: Addr<A>) {
        self.cell.replace(Some(addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix::{Actor, Context};

    struct Nop;
    impl Actor for Nop {
        type Context = Context<Self>;
    }

    #[actix_rt::test]
    async fn a_slot_answers_the_running_incarnation_and_waits_for_the_next() {
        let slot: Slot<Nop> = Slot::new();
        assert!(slot.get().is_none());
        assert!(slot.wait(Duration::from_millis(30)).await.is_none());
        let first = Nop.start();
        slot.fill(first.clone());
        assert!(slot.get().is_some());
        let waiter = slot.clone();
        let next = actix_rt::spawn(async move { waiter.wait(Duration::from_secs(10)).await });
        let second = Nop.start();
        slot.fill(second.clone());
        assert!(next.await.expect("task").is_some());
        let (waiter, old) = (slot.clone(), second.clone());
        let after =
            actix_rt::spawn(async move { waiter.wait_next(&old, Duration::from_secs(10)).await });
        let third = Nop.start();
        slot.fill(third.clone());
        assert_eq!(after.await.expect("task"), Some(third));
        assert_eq!(
            slot.wait_next(&second, Duration::from_millis(10)).await,
            slot.get()
        );
    }
}
