//! [`WatchCell`]: one value that tasks can wait on until it satisfies a condition.
//!
//! Used for the two things a restart publishes: a child's exit reason (set once, awaited by
//! the supervisor that stops it and by `SupervisorHandle::join`) and the current incarnation
//! in a [`crate::Slot`]. It is `tokio::sync::watch` cut down to what those need: one lock
//! around the value and its waiters, no versioned receivers, no per-channel notifier array.
//! A restart publishes through it twice, so its cost is on the restart path.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// A shared value with waiters (see the module docs). Clones share the value.
pub(crate) struct WatchCell<T> {
    inner: Arc<Mutex<State<T>>>,
}

struct State<T> {
    value: T,
    /// Tasks waiting for a change; one entry per task (a re-registering task replaces its own).
    waiters: Vec<Waker>,
}

impl<T> Clone for WatchCell<T> {
    fn clone(&self) -> Self {
        WatchCell {
            inner: self.inner.clone(),
        }
    }
}

impl<T> WatchCell<T> {
    pub fn new(value: T) -> Self {
        WatchCell {
            inner: Arc::new(Mutex::new(State {
                value,
                waiters: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The lock is never held across user code that can panic, so poisoning cannot
        // leave the value half-written.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the current value.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.lock().value)
    }

    /// Replaces the value and wakes every waiter; returns the old value.
    pub fn replace(&self, value: T) -> T {
        let (old, waiters) = {
            let mut state = self.lock();
            let old = std::mem::replace(&mut state.value, value);
            (old, std::mem::take(&mut state.waiters))
        };
        for waker in waiters {
            waker.wake();
        }
        old
    }

    /// Waits until `check` finds what it looks for in the value, and returns that. `check`
    /// runs under the cell's lock: keep it short, do not call back into the cell.
    pub async fn wait_for<R>(&self, mut check: impl FnMut(&T) -> Option<R>) -> R {
        poll_fn(|cx| {
            let mut state = self.lock();
            if let Some(found) = check(&state.value) {
                return Poll::Ready(found);
            }
            let waker = cx.waker();
            match state.waiters.iter_mut().find(|w| w.will_wake(waker)) {
                Some(known) => known.clone_from(waker),
                None => state.waiters.push(waker.clone()),
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[actix_rt::test]
    async fn a_waiter_wakes_on_the_change_it_waits_for_and_not_before() {
        let cell = WatchCell::new(0u32);
        let waiter = cell.clone();
        let task =
            actix_rt::spawn(async move { waiter.wait_for(|v| (*v >= 2).then_some(*v)).await });
        tokio::task::yield_now().await;
        assert_eq!(cell.replace(1), 0);
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "1 does not satisfy the waiter");
        cell.replace(2);
        let got = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the waiter wakes")
            .expect("task");
        assert_eq!(got, 2);
        assert_eq!(cell.read(|v| *v), 2);
    }

    #[actix_rt::test]
    async fn a_satisfied_condition_returns_at_once_and_one_task_registers_once() {
        let cell = WatchCell::new(Some("done"));
        assert_eq!(cell.wait_for(|v| *v).await, "done");
        cell.replace(None);
        // The same task polling repeatedly (a timeout loop) keeps one waiter entry.
        for _ in 0..100 {
            let wait = cell.wait_for(|v| *v);
            assert!(
                tokio::time::timeout(Duration::from_millis(1), wait)
                    .await
                    .is_err()
            );
        }
        assert_eq!(cell.lock().waiters.len(), 1);
        cell.replace(Some("again"));
        assert!(cell.lock().waiters.is_empty());
    }
}
