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
