//! Admission on a [`ConnectionActor`]: the proved key gets the rights the node's policy gives
//! it (or is refused with a close that says what to do), a handshake that does not complete
//! within [`HANDSHAKE_TIMEOUT`] is closed, and a changed policy (the allow file re-read)
//! applies to the live connection: rights gained or lost at once, a removed key closed.

use actix::prelude::*;

use super::{ConnectionActor, HANDSHAKE_TIMEOUT};
use crate::identity::PublicKey;
use crate::peer::trust::RulesChanged;
use crate::sync::Effect;

impl ConnectionActor {
    /// The peer proved `peer`: authorize it with its rights here, or refuse it.
    pub(super) fn authenticated(&mut self, peer: PublicKey) -> Vec<Effect> {
        match self.node.admit(&peer, self.role()) {
            Ok(rights) => {
                tracing::info!(remote = %self.remote, %peer, %rights, "peer authenticated");
                self.live = Some(self.node.live.add(crate::peer::live::LiveConnection::new(
                    self.id,
                    peer,
                    self.remote.clone(),
                    self.is_dialer(),
                    rights,
                )));
                if self.is_dialer() {
                    self.node.note_refusal(&self.remote, None);
                    self.reset_backoff();
                }
                // A peer learns of the CDVCSs here only when it may read them.
                let offer = if rights.read {
                    match self.node.replicas.offer() {
                        Ok(leaves) => crate::sync::Offer::new(leaves),
                        Err(e) => {
                            tracing::error!(remote = %self.remote, "cannot list the CDVCSs to offer: {}", replikativ_actors::error_chain(&e));
                            return self.session.refuse(format!(
                                "node {} cannot read its store; try again later",
                                self.node.public_key()
                            ));
                        }
                    }
                } else {
                    crate::sync::Offer::default()
                };
                let subscriptions = self.session.subscriptions().to_vec();
                self.graphs_call(&subscriptions, |s, g| {
                    s.authorize_with_offer(rights, offer, g)
                })
            }
            Err(why) => {
                tracing::warn!(remote = %self.remote, %peer, "refusing the peer: {why}");
                self.session.refuse(why)
            }
        }
    }

    /// Records that this dialled connection was refused, once its socket has stopped: the
    /// peer has then read our last frames (an `Error` saying why), so a caller that gives up
    /// on the refusal (e.g. `analyze`, exiting) does not cut them off. A later session's
    /// outcome supersedes it.
    pub(super) fn note_refusal(&mut self, why: String, ctx: &mut Context<Self>) {
        let generation = self.generation;
        let (watch, stopped) = tokio::sync::oneshot::channel();
        match &self.out {
            Some(out) => out.do_send(crate::peer::socket::Outgoing::Watch(watch)),
            None => drop(watch),
        }
        ctx.spawn(stopped.into_actor(self).map(move |_, act, _| {
            if act.generation == generation {
                act.node.note_refusal(&act.remote, Some(why));
            }
        }));
    }

    /// Closes the session started as `generation` if its handshake is still incomplete
    /// after [`HANDSHAKE_TIMEOUT`].
    pub(super) fn expire_handshake(&mut self, generation: u64, ctx: &mut Context<Self>) {
        ctx.run_later(HANDSHAKE_TIMEOUT, move |act, ctx| {
            if act.generation != generation || act.out.is_none() {
                return;
            }
            let effects = act.session.handshake_expired(HANDSHAKE_TIMEOUT);
            act.run(effects, ctx);
        });
    }
}

impl StreamHandler<RulesChanged> for ConnectionActor {
    fn handle(&mut self, _: RulesChanged, ctx: &mut Context<Self>) {
        if self.out.is_none() || self.session.is_closed() || !self.session.is_authorized() {
            return;
        }
        let Some(peer) = self.session.peer() else {
            return;
        };
        let effects = match self.node.admit(&peer, self.role()) {
            Ok(rights) => {
                if self.session.rights() != Some(rights) {
                    tracing::info!(remote = %self.remote, %peer, %rights, "the peer's rights changed");
                    if let Some(live) = &self.live
                        && let Ok(mut r) = live.rights.lock()
                    {
                        *r = rights;
                    }
                }
                if !rights.read {
                    // Catch-ups already queued for it are not sent.
                    self.flow.clear_queued();
                }
                if self.session.set_rights(rights) {
                    let keys: Vec<_> = self.session.shared().cloned().collect();
                    keys.iter().flat_map(|k| self.local_change(k)).collect()
                } else {
                    Vec::new()
                }
            }
            Err(why) => {
                tracing::warn!(remote = %self.remote, %peer, "the rules no longer admit the peer: {why}");
                self.session.refuse(why)
            }
        };
        self.run(effects, ctx);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}
