//! [`Slot`] and [`SupervisorSlot`]: where the current incarnation of a child is.
//!
//! A restarted child is a new actor with a new `Addr`; a restarted nested supervisor (or pool)
//! is a new [`SupervisorHandle`]. A slot is filled by the runtime the moment an incarnation
//! starts (before its supervisor answers), wherever in the tree it restarts, so a caller
//! holding the slot reaches the current incarnation with one lock read, never a round trip to
//! a supervisor and never a walk down the tree by path. While a child is between incarnations
//! `get` answers `None` and `wait` waits for the next one, with a deadline.

use std::fmt;
use std::time::Duration;

use actix::{Actor, Addr};

use crate::supervisor::SupervisorHandle;
use crate::watch_cell::WatchCell;

/// What a slot holds: a handle that can tell whether its incarnation still runs.
trait Incarnation: Clone + PartialEq {
    fn running(&self) -> bool;
}

impl<A: Actor> Incarnation for Addr<A> {
    fn running(&self) -> bool {
        self.connected()
    }
}

impl Incarnation for SupervisorHandle {
    fn running(&self) -> bool {
        self.is_running()
    }
}

/// The slot's machinery, shared by both kinds.
struct Published<T> {
    cell: WatchCell<Option<T>>,
}

impl<T> Clone for Published<T> {
    fn clone(&self) -> Self {
        Published {
            cell: self.cell.clone(),
        }
    }
}

/// The incarnation in `slot` if it is running and is not `old`.
fn running<T: Incarnation>(slot: &Option<T>, old: Option<&T>) -> Option<T> {
    slot.as_ref()
        .filter(|a| a.running() && old != Some(*a))
        .cloned()
}

impl<T: Incarnation> Published<T> {
    fn new() -> Self {
        Published {
            cell: WatchCell::new(None),
        }
    }

    fn get(&self) -> Option<T> {
        self.cell.read(|slot| running(slot, None))
    }

    async fn wait(&self, timeout: Duration) -> Option<T> {
        if let Some(current) = self.get() {
            return Some(current);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // A stopped incarnation stays in the slot until the next one fills it, and
            // stopping does not touch the slot: look again now and then.
            let tick = tokio::time::Instant::now() + Duration::from_millis(20);
            let next = self.cell.wait_for(|slot| running(slot, None));
            match tokio::time::timeout_at(deadline.min(tick), next).await {
                Ok(current) => return Some(current),
                Err(_) if tokio::time::Instant::now() >= deadline => return self.get(),
                Err(_) => {}
            }
        }
    }

    async fn wait_next(&self, old: &T, timeout: Duration) -> Option<T> {
        let next = self.cell.wait_for(|slot| running(slot, Some(old)));
        tokio::time::timeout(timeout, next).await.ok()
    }

    fn fill(&self, current: T) {
        self.cell.replace(Some(current));
    }
}

/// The current incarnation of one child actor (see the module docs). Cheap to clone; clones
/// share.
pub struct Slot<A: Actor> {
    inner: Published<Addr<A>>,
}

impl<A: Actor> Clone for Slot<A> {
    fn clone(&self) -> Self {
        Slot {
            inner: self.inner.clone(),
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
            inner: Published::new(),
        }
    }

    /// The running incarnation, if there is one.
    pub fn get(&self) -> Option<Addr<A>> {
        self.inner.get()
    }

    /// The running incarnation, waiting up to `timeout` for one to start (a restart with
    /// backoff in progress). `None` when none started in time.
    pub async fn wait(&self, timeout: Duration) -> Option<Addr<A>> {
        self.inner.wait(timeout).await
    }

    /// The next running incarnation after `old` (e.g. the successor of an incarnation that
    /// just failed), waiting up to `timeout` for it to start. Yields to the runtime while it
    /// waits, so the supervisor can start it.
    pub async fn wait_next(&self, old: &Addr<A>, timeout: Duration) -> Option<Addr<A>> {
        self.inner.wait_next(old, timeout).await
    }

    /// Publishes a new incarnation (the runtime calls this when it starts one).
    pub(crate) fn fill(&self, addr: Addr<A>) {
        self.inner.fill(addr);
    }
}

/// The current incarnation of a nested supervisor or pool (see the module docs), given to
/// [`crate::ChildSpec::supervisor_in`] or [`crate::Pool::child_spec_in`]. Cheap to clone;
/// clones share.
#[derive(Clone)]
pub struct SupervisorSlot {
    inner: Published<SupervisorHandle>,
}

impl Default for SupervisorSlot {
    fn default() -> Self {
        SupervisorSlot::new()
    }
}

impl fmt::Debug for SupervisorSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSlot")
            .field("running", &self.get().map(|s| s.path().to_owned()))
            .finish()
    }
}

impl SupervisorSlot {
    /// An empty slot, filled when the supervisor it is given to starts.
    pub fn new() -> SupervisorSlot {
        SupervisorSlot {
            inner: Published::new(),
        }
    }

    /// The running incarnation, if there is one.
    pub fn get(&self) -> Option<SupervisorHandle> {
        self.inner.get()
    }

    /// The running incarnation, waiting up to `timeout` for one to start (its parent may be
    /// restarting it). `None` when none started in time.
    pub async fn wait(&self, timeout: Duration) -> Option<SupervisorHandle> {
        self.inner.wait(timeout).await
    }

    /// The next running incarnation after `old`, waiting up to `timeout` for it to start.
    pub async fn wait_next(
        &self,
        old: &SupervisorHandle,
        timeout: Duration,
    ) -> Option<SupervisorHandle> {
        self.inner.wait_next(old, timeout).await
    }

    /// Publishes a new incarnation (the runtime calls this when it starts one).
    pub(crate) fn fill(&self, handle: SupervisorHandle) {
        self.inner.fill(handle);
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
