//! Waiting for a condition with a deadline: the one family of such helpers. Each polls its
//! check every [`POLL`] until it holds or the deadline passes; the panicking forms name what
//! was awaited (and, for [`wait_until`], a detail read at the moment they give up).
//!
//! - [`periodic_check`]: blocking, returns whether the check became true (for code outside a
//!   runtime, e.g. tests that drive child processes).
//! - [`eventually`], [`eventually_async`], [`wait_until`]: async, so a node's actors keep
//!   running while the test waits; they panic on timeout.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a check is polled.
pub const POLL: Duration = Duration::from_millis(20);

/// Waits until `check` is true or `timeout` passes; returns whether it became true.
pub fn periodic_check(mut check: impl FnMut() -> bool, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls the async `check` until it is true; panics naming `what` (and `detail()`, when given)
/// after `timeout`. The other async waits are this one.
async fn poll_until<F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
    detail: Option<&dyn Fn() -> String>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    while !check().await {
        if Instant::now() >= end {
            match detail {
                Some(detail) => {
                    panic!(
                        "timed out after {timeout:?} waiting for {what}: {}",
                        detail()
                    )
                }
                None => panic!("timed out after {timeout:?} waiting for {what}"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it is true; panics naming `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    poll_until(what, timeout, || std::future::ready(check()), None).await;
}

/// Like [`eventually`] with an async check.
pub async fn eventually_async<F, Fut>(what: &str, timeout: Duration, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until(what, timeout, check, None).await;
}

/// Like [`eventually`], and the panic also says `detail()` (e.g. what the nodes hold when the
/// wait gives up).
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    detail: impl Fn() -> String,
) {
    poll_until(what, timeout, || std::future::ready(cond()), Some(&detail)).await;
}
