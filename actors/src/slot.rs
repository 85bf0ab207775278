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
use tokio::sync::watch;

/// The current incarnation of one child (see the module docs). Cheap to clone; clones share.
pub struct Slot<A: Actor> {
    tx: std::sync::Arc<watch::Sender<Option<Addr<A>>>>,
}

impl<A: Actor> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Slot {
            tx: self.tx.clone(),
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

impl<A: Actor> Slot<A> {
    /// An empty slot, filled when the child it is given to starts.
    pub fn new() -> Slot<A> {
        Slot {
            tx: std::sync::Arc::new(watch::channel(None).0),
        }
    }

    /// The running incarnation, if there is one.
    pub fn get(&self) -> Option<Addr<A>> {
        self.tx.borrow().as_ref().filter(|a| a.connected()).cloned()
    }

    /// The running incarnation, waiting up to `timeout` for one to start (a restart with
    /// backoff in progress). `None` when none started in time.
    pub async fn wait(&self, timeout: Duration) -> Option<Addr<A>> {
        if let Some(addr) = self.get() {
            return Some(addr);
        }
        let mut rx = self.tx.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(addr) = rx.borrow_and_update().as_ref().filter(|a| a.connected()) {
                return Some(addr.clone());
            }
            // A stopped incarnation leaves its address in the slot until the next one fills
            // it; recheck now and then in case it stopped after we looked.
            let tick = tokio::time::Instant::now() + Duration::from_millis(20);
            match tokio::time::timeout_at(deadline.min(tick), rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) if tokio::time::Instant::now() >= deadline => return self.get(),
                Err(_) => {}
            }
        }
    }

    /// The next running incarnation after `old` (e.g. the successor of an incarnation that
    /// just failed), waiting up to `timeout` for it to start. Yields to the runtime while it
    /// waits, so the supervisor can start it.
    pub async fn wait_next(&self, old: &Addr<A>, timeout: Duration) -> Option<Addr<A>> {
        let mut rx = self.tx.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(addr) = rx
                .borrow_and_update()
                .as_ref()
                .filter(|a| a.connected() && *a != old)
            {
                return Some(addr.clone());
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Publishes a new incarnation (the runtime calls this when it starts one).
    pub(crate) fn fill(&self, addr: Addr<A>) {
        self.tx.send_replace(Some(addr));
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
