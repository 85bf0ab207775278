//! Admission of the peer into a [`SyncSession`]: the authentication handshake, the driver's
//! decision on the proved key (authorize with rights, or refuse), live changes of those
//! rights, our subscriptions, and the refusals of requests that need a right the peer lacks.
//!
//! Until authorized, a session accepts only the handshake (`Hello`, `Proof`) and an `Error`
//! from the peer; anything else closes it.

use std::time::Duration;

use crate::crdt::commit::CrdtKey;
use crate::protocol::{ErrorCode, Message};

use super::effect::{CloseReason, Effect, Request};
use super::graph::Graphs;
use super::receive::Input;
use super::rights::Rights;
use super::session::SyncSession;

impl SyncSession {
    /// A message before authorization: the handshake's, or a refusal from the peer.
    pub(super) fn on_handshake(&mut self, input: Input) -> Vec<Effect> {
        let msg = match input {
            Input::Other(Message::Error { code, message }) => return self.on_error(code, message),
            Input::Other(msg) => msg,
            content => {
                return self.close(CloseReason::Handshake(
                    super::handshake::HandshakeError::Unexpected {
                        kind: content.kind(),
                        detail: "expected the peer's hello first",
                    },
                ));
            }
        };
        if self.peer.is_some() {
            // The driver answers `Authenticated` before feeding more input.
            return self.close(CloseReason::Unexpected {
                kind: msg.kind(),
                detail: "received before the peer was authorized",
            });
        }
        match self.config.handshake.on_message(&msg) {
            Ok(Some(proof)) => vec![Effect::Send(proof)],
            Ok(None) => match self.config.handshake.peer() {
                Some(peer) => {
                    self.peer = Some(peer);
                    vec![Effect::Authenticated { peer }]
                }
                None => Vec::new(),
            },
            Err(e) => self.close(CloseReason::Handshake(e)),
        }
    }

    /// The CRDTs this session subscribes to once the peer is authorized.
    pub fn subscriptions(&self) -> &[CrdtKey] {
        &self.config.subscriptions
    }

    /// Subscribes to more CRDTs on this connection (before authorization: once authorized).
    /// The subscription is our `Heads` of each CRDT (read from `graphs`): the peer treats the
    /// first `Heads` of a CRDT as a subscription and answers with its own.
    pub fn subscribe(&mut self, crdts: Vec<CrdtKey>, graphs: &dyn Graphs) -> Vec<Effect> {
        if self.rights.is_none() {
            for crdt in crdts {
                if !self.config.subscriptions.contains(&crdt) {
                    self.config.subscriptions.push(crdt);
                }
            }
            return Vec::new();
        }
        if self.closed {
            return Vec::new();
        }
        let new: Vec<CrdtKey> = crdts
            .into_iter()
            .filter(|c| !self.shared.contains_key(c) && self.requested.insert(c.clone()))
            .collect();
        new.iter()
            .map(|crdt| Effect::Send(self.heads_message(crdt, graphs)))
            .collect()
    }

    /// The peer's key may do `rights` here: replication starts (our subscriptions go out:
    /// our `Heads` of each [subscribed](Self::subscriptions) CRDT, read from `graphs`).
    pub fn authorize(&mut self, rights: Rights, graphs: &dyn Graphs) -> Vec<Effect> {
        if self.closed || self.peer.is_none() || self.rights.is_some() {
            return Vec::new();
        }
        self.rights = Some(rights);
        let subs = self.config.subscriptions.clone();
        self.subscribe(subs, graphs)
    }

    /// This node does not admit the peer's key: tell it `message` (what to do) and close.
    pub fn refuse(&mut self, message: String) -> Vec<Effect> {
        self.close(CloseReason::Refused { message })
    }

    /// The peer's rights changed on a live connection (e.g. the allow file was re-read).
    /// Answers whether it gained read: the driver then sends it what it lacks.
    pub fn set_rights(&mut self, rights: Rights) -> bool {
        let Some(old) = self.rights else {
            return false;
        };
        self.rights = Some(rights);
        rights.read && !old.read
    }

    /// The handshake did not complete within `after`: close, unless it did.
    pub fn handshake_expired(&mut self, after: Duration) -> Vec<Effect> {
        if self.rights.is_some() {
            return Vec::new();
        }
        self.close(CloseReason::HandshakeTimeout { after })
    }

    /// Whether the peer proved its key and was authorized.
    pub fn is_authorized(&self) -> bool {
        self.rights.is_some()
    }

    /// The peer's `Error`: a `Forbidden` refuses one of our requests and the connection
    /// stays; any other ends the session.
    pub(super) fn on_error(&mut self, code: ErrorCode, message: String) -> Vec<Effect> {
        if code == ErrorCode::Forbidden && self.rights.is_some() {
            return vec![Effect::RefusedByPeer { message }];
        }
        self.closed = true;
        vec![Effect::Close {
            reason: CloseReason::PeerError { code, message },
        }]
    }

    /// Refuses the peer's `request` about `crdt` for a right it lacks: a `Forbidden` error
    /// naming the CDVCS and the right, and a `Refused` effect for the log.
    pub(super) fn forbid(&self, crdt: &CrdtKey, request: Request) -> Vec<Effect> {
        let Some(peer) = self.peer else {
            return Vec::new();
        };
        let us = self.config.handshake.key();
        let right = request.right();
        let message = match request {
            Request::Subscribe => format!(
                "CDVCS {crdt}: subscription refused: key {peer} lacks the {right} right on node {us} (grant it there with --allow-read or --allow)"
            ),
            Request::Push => format!(
                "CDVCS {crdt}: commits refused, nothing stored or relayed: key {peer} lacks the {right} right on node {us} (grant it there with --allow-write or --allow)"
            ),
        };
        vec![
            Effect::Send(Message::Error {
                code: ErrorCode::Forbidden,
                message,
            }),
            Effect::Refused {
                peer,
                crdt: crdt.clone(),
                request,
            },
        ]
    }
}
