//! A dynamic pool under the node's tree, found again after its supervisor restarts.
//!
//! A [`PoolHandle`] is bound to one incarnation of the pool's supervisor; when rest-for-one
//! restarts it (e.g. after the store actor failed), an old handle only answers
//! `SupervisorGone`. The slot keeps the pool's template and re-resolves the current
//! incarnation by path from the root only when the cached one has stopped: starting a child
//! is rare (first touch, after a restart); reaching a running child goes through its own
//! [`Slot`](replikativ_actors::Slot), never through here.

use std::sync::Mutex;

use actix::prelude::*;
use replikativ_actors::{Pool, PoolHandle, SupervisionError, SupervisorHandle};

pub(crate) struct PoolSlot<A: Actor<Context = Context<A>>, Args: Clone + Send + Sync + 'static> {
    template: Pool<A, Args>,
    path: &'static [&'static str],
    root: SupervisorHandle,
    current: Mutex<Option<PoolHandle<A, Args>>>,
}

impl<A, Args> PoolSlot<A, Args>
where
    A: Actor<Context = Context<A>>,
    Args: Clone + Send + Sync + 'static,
{
    /// The pool `template` running at `path` under `root`.
    pub(crate) fn new(
        template: Pool<A, Args>,
        path: &'static [&'static str],
        root: SupervisorHandle,
    ) -> Self {
        PoolSlot {
            template,
            path,
            root,
            current: Mutex::new(None),
        }
    }

    /// The current incarnation of the pool.
    pub(crate) async fn handle(&self) -> Result<PoolHandle<A, Args>, SupervisionError> {
        if let Ok(cur) = self.current.lock()
            && let Some(h) = cur.as_ref()
            && h.supervisor().is_running()
        {
            return Ok(h.clone());
        }
        let mut sup = self.root.clone();
        for segment in self.path {
            sup = sup.supervisor(segment).await?;
        }
        let handle = self.template.handle(sup);
        if let Ok(mut cur) = self.current.lock() {
            *cur = Some(handle.clone());
        }
        Ok(handle)
    }
}
