//! Receipt of content: `Values` are buffered until the next `Commits` frame, which is verified
//! with them as one batch (module `verify`). Content from the codec arrives hashed once
//! ([`Received`]); a [`Message`] handed to the session directly is hashed on entry here, so
//! both paths verify alike and nothing is hashed twice.

use std::collections::HashSet;

use crate::crdt::commit::CrdtKey;
use crate::id::{Id, Verified};
use crate::protocol::{Blob, Message, Received};

use super::effect::{CloseReason, Effect, Request, SyncError};
use super::graph::with_graph;
use super::graph::{Graphs, Overlay};
use super::session::SyncSession;
use super::verify::{Checked, CheckedPack, check_pack, verify};
use crate::crdt::authorship::Signature;

/// One input to the session, its content checked.
pub(super) enum Input {
    Values {
        crdt: CrdtKey,
        values: Vec<Checked>,
        /// Bytes received, forged ones included (they count against the buffer bound).
        bytes: usize,
    },
    Packs {
        crdt: CrdtKey,
        packs: Vec<CheckedPack>,
        /// Bytes received (compressed), refused ones included.
        bytes: usize,
    },
    Commits {
        crdt: CrdtKey,
        commits: Vec<Checked>,
        /// One per commit, or empty (none signed).
        signatures: Vec<Option<Signature>>,
    },
    /// A message without content.
    Other(Message),
}

impl Input {
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Input::Values { .. } => "values",
            Input::Packs { .. } => "packs",
            Input::Commits { .. } => "commits",
            Input::Other(msg) => msg.kind(),
        }
    }
}

impl From<Received> for Input {
    fn from(r: Received) -> Input {
        match r {
            Received::Values { crdt, values } => Input::Values {
                crdt,
                bytes: values.iter().map(Verified::len).sum(),
                values: values.into_iter().map(Ok).collect(),
            },
            Received::Packs { crdt, packs } => Input::Packs {
                crdt,
                bytes: packs.iter().map(|p| p.bytes().len()).sum(),
                packs: packs.into_iter().map(Ok).collect(),
            },
            Received::Commits {
                crdt,
                commits,
                signatures,
            } => Input::Commits {
                crdt,
                commits: commits.into_iter().map(Ok).collect(),
                signatures: signatures.into_iter().map(|s| s.map(|s| s.0)).collect(),
            },
            Received::Other(msg) => Input::from(msg),
        }
    }
}

impl From<Message> for Input {
    fn from(msg: Message) -> Input {
        let check = |blobs: Vec<Blob>| -> Vec<Checked> {
            blobs
                .into_iter()
                .map(|b| Verified::check(b.id, b.bytes.0))
                .collect()
        };
        match msg {
            Message::Values { crdt, values } => Input::Values {
                crdt,
                bytes: values.iter().map(|v| v.bytes.0.len()).sum(),
                values: check(values),
            },
            Message::Packs { crdt, packs } => Input::Packs {
                crdt,
                bytes: packs.iter().map(|p| p.bytes.0.len()).sum(),
                packs: packs.into_iter().map(check_pack).collect(),
            },
            Message::Commits {
                crdt,
                commits,
                signatures,
            } => Input::Commits {
                crdt,
                commits: check(commits),
                signatures: signatures.into_iter().map(|s| s.map(|s| s.0)).collect(),
            },
            other => Input::Other(other),
        }
    }
}

impl SyncSession {
    pub(super) fn on_values(
        &mut self,
        crdt: &CrdtKey,
        values: Vec<Checked>,
        bytes: usize,
    ) -> Vec<Effect> {
        self.buffer(crdt, bytes, |state| state.pending_values.extend(values))
    }

    pub(super) fn on_packs(
        &mut self,
        crdt: &CrdtKey,
        packs: Vec<CheckedPack>,
        bytes: usize,
    ) -> Vec<Effect> {
        self.buffer(crdt, bytes, |state| state.pending_packs.extend(packs))
    }

    /// Buffers content until the next `Commits` frame, within `max_pending_bytes`.
    fn buffer(
        &mut self,
        crdt: &CrdtKey,
        bytes: usize,
        keep: impl FnOnce(&mut super::session::Shared),
    ) -> Vec<Effect> {
        let max = self.config.limits.max_pending_bytes;
        let may_write = self.granted().write;
        let Some(state) = self.shared.get_mut(crdt) else {
            return Vec::new();
        };
        if !may_write {
            // Dropped unbuffered; the `Commits` frame that ends the batch is refused.
            return Vec::new();
        }
        state.pending_bytes += bytes;
        if state.pending_bytes > max {
            let bytes = state.pending_bytes;
            return self.close(CloseReason::PendingOverflow {
                crdt: crdt.clone(),
                bytes,
                max,
            });
        }
        keep(state);
        Vec::new()
    }

    pub(super) fn on_commits(
        &mut self,
        crdt: &CrdtKey,
        commits: Vec<Checked>,
        signatures: Vec<Option<Signature>>,
        graphs: &dyn Graphs,
    ) -> Vec<Effect> {
        let peer = self.peer;
        let max_frontier = self.config.limits.max_frontier;
        if !self.granted().write {
            return match self.shared.contains_key(crdt) {
                true => self.forbid(crdt, Request::Push),
                false => Vec::new(),
            };
        }
        let Some(state) = self.shared.get_mut(crdt) else {
            return Vec::new();
        };
        let values = std::mem::take(&mut state.pending_values);
        let packs = std::mem::take(&mut state.pending_packs);
        state.pending_bytes = 0;
        let result = with_graph(crdt, graphs, |g| {
            let have = Overlay {
                graph: g,
                inflight: &state.inflight_ids,
            };
            verify(commits, &signatures, values, packs, &have)
        });
        match result {
            Ok(batch) if batch.commits.is_empty() => Vec::new(),
            Ok(batch) => {
                let ids: Vec<Id> = batch.commits.iter().map(|c| c.id).collect();
                let parents: HashSet<Id> = batch
                    .commits
                    .iter()
                    .flat_map(|c| c.commit.parents.iter().copied())
                    .collect();
                let tips: Vec<Id> = ids
                    .iter()
                    .filter(|id| !parents.contains(id))
                    .copied()
                    .collect();
                state.inflight_ids.extend(ids.iter().copied());
                state.inflight.push_back(ids);
                // The peer holds what it sent us: never send it back.
                state.learn(&tips, max_frontier);
                vec![Effect::Apply {
                    crdt: crdt.clone(),
                    batch,
                }]
            }
            Err((id, reason)) => {
                let close = match &reason {
                    SyncError::MissingParent { commit, parent } => CloseReason::MissingParents {
                        crdt: crdt.clone(),
                        commit: *commit,
                        parent: *parent,
                    },
                    _ => CloseReason::Verification {
                        crdt: crdt.clone(),
                        id,
                    },
                };
                let mut out = vec![Effect::Reject {
                    peer,
                    crdt: Some(crdt.clone()),
                    id,
                    reason,
                }];
                out.extend(self.close(close));
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::crdt::{Commit, Transaction};
    use crate::id::hashes_on_this_thread;
    use crate::identity::Keypair;
    use crate::protocol::Codec;
    use crate::store::{WriteBatch, cdvcs};
    use crate::sync::{GraphView, SessionConfig, SyncLimits};
    use crate::sync::{Handshake, Role};

    /// A graph holding the root only, built before counting.
    struct Root(Id);

    impl GraphView for Root {
        fn contains(&self, id: &Id) -> bool {
            *id == self.0
        }
        fn heads(&self) -> Vec<Id> {
            vec![self.0]
        }
        fn commits_between(&self, _: &[Id], _: &[Id]) -> Vec<Id> {
            Vec::new()
        }
        fn ancestry_sample(&self, _: &[Id], _: &[Id], _: usize) -> Vec<Id> {
            Vec::new()
        }
    }

    impl Graphs for Root {
        fn graph(&self, _: &CrdtKey) -> Option<&dyn GraphView> {
            Some(self)
        }
    }

    #[test]
    fn each_received_value_and_commit_is_hashed_once_from_frame_to_store_batch() {
        let key = CrdtKey::new("me@x.org", Uuid::from_u128(1));
        let graphs = Root(Commit::root(&key).id);
        let mut parent = graphs.0;
        let (mut values, mut commits) = (Vec::new(), Vec::new());
        for i in 0..3 {
            let value = Blob::new(format!("value {i}").into_bytes());
            let c = Commit {
                parents: vec![parent],
                transactions: vec![Transaction {
                    op: "add".into(),
                    params: value.id,
                }],
                author: "a".into(),
                ts: i,
            }
            .encode();
            parent = c.id;
            values.push(value);
            commits.push(Blob::new(c.bytes));
        }
        let codec = Codec::default();
        let frames = [
            Message::Values {
                crdt: key.clone(),
                values,
            },
            Message::Commits {
                crdt: key.clone(),
                commits,
                signatures: Vec::new(),
            },
        ]
        .map(|m| codec.encode(&m).expect("encodes"));
        let mut session = SyncSession::new(SessionConfig {
            handshake: Handshake::new(Keypair::from_seed([7; 32]), Role::Dialler, [1; 32], None),
            subscriptions: vec![key.clone()],
            limits: SyncLimits::default(),
        });
        let Some(Effect::Send(hello)) = session.start().pop() else {
            panic!("no hello");
        };
        let mut peer = Handshake::new(Keypair::from_seed([8; 32]), Role::Acceptor, [2; 32], None);
        let Ok(Some(peer_proof)) = peer.on_message(&hello) else {
            panic!("no proof from the peer");
        };
        session.on_message(peer.hello(), &graphs);
        let effects = session.on_message(peer_proof, &graphs);
        assert!(matches!(effects[..], [Effect::Authenticated { .. }]));
        session.authorize(crate::sync::Rights::ALL, &graphs);
        session.on_message(
            Message::Subscribed {
                crdts: vec![key.clone()],
            },
            &graphs,
        );

        let before = hashes_on_this_thread();
        let mut effects = Vec::new();
        for frame in &frames {
            let received = codec.receive(frame).expect("honest frame");
            effects.extend(session.on_received(received, &graphs));
        }
        let Some(Effect::Apply { batch, .. }) = effects.pop() else {
            panic!("expected an apply, got {effects:?}");
        };
        assert_eq!((batch.values.len(), batch.commits.len()), (3, 3));
        assert!(batch.values_to_check.is_empty());
        // What the replica writes for a remote batch: the commits, then the values.
        let mut write = cdvcs::commits_batch(&key, &batch.commits, &[parent]);
        for value in batch.values {
            write.put_verified_value(value);
        }
        assert_eq!(
            hashes_on_this_thread() - before,
            6,
            "six received blobs, each hashed once"
        );
        let mut expected = WriteBatch::new();
        for c in &batch.commits {
            expected.put_value(c.bytes.clone());
        }
        assert!(
            expected
                .value_ids()
                .all(|id| write.value_ids().any(|w| w == id))
        );
        assert_eq!(write.value_ids().count(), 6);
    }
}
