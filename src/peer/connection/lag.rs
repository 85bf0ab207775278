//! The peer's lag on a [`ConnectionActor`], recorded for operators about every second.

use std::time::Duration;

use super::ConnectionActor;
use crate::crdt::CrdtKey;

/// How often a connection records the peer's lag.
pub(super) const EVERY: Duration = Duration::from_secs(1);
/// Beyond this many shared CRDTs the lag is not computed (the metrics aggregate those).
const MAX_CRDTS: usize = 1_000;

impl ConnectionActor {
    /// Records how far behind the peer is on each shared CRDT.
    pub(super) fn note_lag(&mut self) {
        let Some(live) = self.live.clone() else {
            return;
        };
        if !self.node.metrics_on() {
            return;
        }
        let keys: Vec<CrdtKey> = self.session.shared().cloned().collect();
        if keys.len() > MAX_CRDTS {
            return;
        }
        let lag = self.graphs_call(&keys, |s, g| s.lag(&keys, g));
        if let Ok(mut l) = live.lag.lock() {
            *l = lag;
        }
    }
}
