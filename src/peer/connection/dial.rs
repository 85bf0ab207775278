//! The dialling side of a [`ConnectionActor`]: redial forever with capped, jittered backoff
//! after a failed dial, a lost connection or a refusal; an accepted connection just ends.

use std::time::Duration;

use actix::prelude::*;
use replikativ_actors::ChildBackoff;

use super::{ConnectionActor, Mode};
use crate::peer::client_socket::{dial, dial_policy};

impl ConnectionActor {
    /// The socket is gone: a dialler redials, an accepted connection ends.
    pub(super) fn lost(&mut self, why: String, ctx: &mut Context<Self>) {
        self.out = None;
        self.live = None;
        self.node.forget_remote(self.id);
        match &self.mode {
            Mode::Accepted(_) => {
                tracing::info!(remote = %self.remote, "connection closed: {why}");
                ctx.stop();
            }
            Mode::Dial(_) => {
                tracing::info!(remote = %self.remote, "connection lost: {why}; redialling");
                self.redial(ctx);
            }
        }
    }

    /// Dials again: at once after a connection that was admitted, else after the backoff
    /// (a peer that is down, or one that refuses us, is not dialled in a tight loop).
    pub(super) fn redial(&mut self, ctx: &mut Context<Self>) {
        let Mode::Dial(url) = self.mode.clone() else {
            return;
        };
        let delay = if self.failures == 0 {
            Duration::ZERO
        } else {
            self.dial_backoff.next_delay(Duration::ZERO)
        };
        self.failures = self.failures.saturating_add(1);
        ctx.run_later(delay, move |act, ctx| {
            let me = ctx.address();
            let tls = act.node.tls().client.clone();
            ctx.wait(
                async move { dial(&url, &tls, move |_out| me.recipient()).await }
                    .into_actor(act)
                    .map(|res, act, ctx| match res {
                        Ok((socket, binding)) => {
                            act.channel_binding = binding;
                            act.out = Some(socket.recipient());
                            tracing::info!(remote = %act.remote, "connected");
                            act.open_session(ctx);
                        }
                        Err(e) => {
                            tracing::debug!(remote = %act.remote, "dial failed: {e}");
                            act.node.note_dial_error(&act.remote, e.to_string());
                            act.redial(ctx);
                        }
                    }),
            );
        });
    }

    /// The peer was admitted: the next redial after a drop is immediate again.
    pub(super) fn reset_backoff(&mut self) {
        self.failures = 0;
        self.dial_backoff = ChildBackoff::new(dial_policy());
    }
}
