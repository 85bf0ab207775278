//! Received batches to their replicas: a [`ConnectionActor`] hands each verified batch to the
//! replica of its CDVCS and waits, its effect queue paused, until the batch is durable.

use actix::prelude::*;

use super::ConnectionActor;
use crate::crdt::CrdtKey;
use crate::replica::ApplyRemote;
use crate::sync::VerifiedBatch;

impl ConnectionActor {
    /// Hands a verified batch to its replica; the queue waits until it is durable.
    pub(super) fn apply(&mut self, crdt: CrdtKey, batch: VerifiedBatch, ctx: &mut Context<Self>) {
        self.busy = true;
        let node = self.node.clone();
        let origin = Some(self.id);
        let key = crdt.clone();
        // `batch.values_to_check` (params not carried) are checked by the replica, which
        // refuses the whole batch when one is not held.
        let fut = async move {
            let addr = node.replicas.addr(&key).await.map_err(|e| e.to_string())?;
            let msg = ApplyRemote {
                commits: batch.commits,
                values: batch.values,
                packs: batch.packs,
                values_to_check: batch.values_to_check,
                origin,
            };
            match addr.send(msg).await {
                Ok(Ok(_added)) => Ok(()),
                Ok(Err(e)) => Err(replikativ_actors::error_chain(&e)),
                Err(_) => Err("the replica actor stopped".to_string()),
            }
        };
        ctx.wait(fut.into_actor(self).map(move |res, act, ctx| {
            act.busy = false;
            let effects = match res {
                Ok(()) => act.graphs_call(std::slice::from_ref(&crdt), |s, g| {
                    s.on_applied(&crdt, g)
                }),
                Err(reason) => {
                    let peer = act.session.peer().map_or_else(|| "unauthenticated".to_owned(), |k| k.to_string());
                    tracing::warn!(remote = %act.remote, %peer, crdt = %crdt, "applying a batch from {peer} failed: {reason}");
                    act.session.on_apply_failed(&crdt, reason)
                }
            };
            act.run(effects, ctx);
        }));
    }
}
