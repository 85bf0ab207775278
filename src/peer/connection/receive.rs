//! Handing a decoded frame to the session: the replicas of the CRDTs it names are started
//! first when this node holds them but has not started them yet (replicas start on first
//! use, not all at node start), so the session never sees a held CDVCS as root-only.

use actix::prelude::*;

use super::ConnectionActor;
use crate::protocol::{Message, Received};
use crate::sync::Effect;

impl ConnectionActor {
    /// When `msg` names held replicas not started yet: starts them, then hands it over
    /// (`None`); else gives it back. No other frame is handled meanwhile, so frames keep
    /// their order.
    pub(super) fn start_then_receive(
        &mut self,
        msg: Received,
        ctx: &mut Context<Self>,
    ) -> Option<Received> {
        let idle = self.node.replicas.stopped(msg.crdts());
        if idle.is_empty() {
            return Some(msg);
        }
        let replicas = self.node.replicas.clone();
        ctx.wait(
            async move { replicas.ensure_all(&idle).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    if let Err(e) = res {
                        tracing::error!(remote = %act.remote, "cannot start a replica: {e}");
                    }
                    let effects = act.received(msg);
                    act.run(effects, ctx);
                }),
        );
        None
    }

    /// A decoded frame for the session.
    pub(super) fn received(&mut self, msg: Received) -> Vec<Effect> {
        if let Received::Other(Message::Heads { crdt, heads }) = &msg {
            self.node.note_remote_heads(self.id, crdt, heads);
        }
        let crdts = msg.crdts().to_vec();
        self.graphs_call(&crdts, |s, g| s.on_received(msg, g))
    }
}
