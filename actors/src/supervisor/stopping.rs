//! Stopping children one after another, each by its shutdown policy.

use super::{ChildRecord, RunningChild};
use crate::child_spec::ChildId;
use crate::exit::ExitReason;
use crate::restart::Restart;
use crate::strategy::Shutdown;
use crate::watch_cell::WatchCell;

/// One child to stop.
pub(crate) struct StopItem {
    id: ChildId,
    generation: u64,
    restart: Restart,
    shutdown: Shutdown,
    running: RunningChild,
}

impl StopItem {
    pub(super) fn new(rec: &ChildRecord, running: RunningChild) -> Self {
        Self {
            id: rec.spec.id.clone(),
            generation: rec.generation,
            restart: rec.spec.restart,
            shutdown: rec.spec.shutdown,
            running,
        }
    }
}

/// A child the supervisor stopped, and how it ended.
pub(crate) struct StoppedChild {
    pub id: ChildId,
    pub generation: u64,
    pub restart: Restart,
    pub reason: ExitReason,
}

/// Stops `items` in the given order, each fully before the next.
pub(crate) async fn stop_in_order(items: Vec<StopItem>) -> Vec<StoppedChild> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let reason = stop_one(&item.running, item.shutdown).await;
        out.push(StoppedChild {
            id: item.id,
            generation: item.generation,
            restart: item.restart,
            reason,
        });
    }
    out
}

/// Stops one incarnation: ask (or kill), wait, kill after the timeout.
pub(super) async fn stop_one(running: &RunningChild, shutdown: Shutdown) -> ExitReason {
    let exited = &running.exited;
    match shutdown {
        Shutdown::BrutalKill => {
            running.control.kill();
            wait_exit(exited).await
        }
        Shutdown::Infinity => {
            running.control.stop();
            wait_exit(exited).await
        }
        // Without a runtime (it is being dropped under a tree nobody shut down) there is no
        // timer to wait on, and nothing left to wait for: the tasks are being dropped.
        Shutdown::Timeout(_) if tokio::runtime::Handle::try_current().is_err() => {
            running.control.kill();
            wait_exit(exited).await
        }
        Shutdown::Timeout(limit) => {
            running.control.stop();
            match tokio::time::timeout(limit, wait_exit(exited)).await {
                Ok(reason) => reason,
                Err(_) => {
                    running.control.kill();
                    wait_exit(exited).await
                }
            }
        }
    }
}

/// The exit reason, once the incarnation's guard has published it (it always does, from
/// `Drop`).
async fn wait_exit(exited: &WatchCell<Option<ExitReason>>) -> ExitReason {
    exited.wait_for(Option::clone).await
}
