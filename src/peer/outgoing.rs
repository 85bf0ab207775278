//! The sending side of a connection: loads commits from the store for its [`Flow`] and
//! logs what could not be loaded or framed. The flow decides everything else (batches,
//! pings, window, the last-batch heads).

use std::time::Instant;

use crate::id::Id;
use crate::protocol::Message;
use crate::store::Store;
use crate::sync::{Flow, FlowOutput, OutgoingCommit};

/// Runs `flow` now: the frames to send, in order.
pub(super) fn batches(flow: &mut Flow, store: &Store, remote: &str) -> Vec<Message> {
    let outputs = flow.pump(Instant::now(), |_crdt, id| load_outgoing(store, id));
    let mut frames = Vec::with_capacity(outputs.len());
    for output in outputs {
        match output {
            FlowOutput::Send(msg) => frames.push(msg),
            FlowOutput::LoadFailed { crdt, id, reason } => {
                tracing::error!(remote = %remote, crdt = %crdt, commit = %id, "cannot load a commit to send: {reason}");
            }
            FlowOutput::FrameFailed { crdt, error } => {
                tracing::error!(remote = %remote, crdt = %crdt, "cannot frame a batch: {error}");
            }
        }
    }
    frames
}

/// Loads a commit and the values its transactions reference, for sending: the packs it was
/// stored with as they are (not decompressed), its other params one by one.
pub fn load_outgoing(store: &crate::store::Store, id: &Id) -> Result<OutgoingCommit, String> {
    let commit = crate::store::cdvcs::load_commit_record(store, id)
        .map_err(|e| replikativ_actors::error_chain(&e))?
        .ok_or_else(|| format!("commit {id} is not in the store"))?;
    // A root's param names its CDVCS: it is no value.
    let params: Vec<Id> = match commit.commit.parents.is_empty() {
        true => Vec::new(),
        false => commit
            .commit
            .transactions
            .iter()
            .map(|t| t.params)
            .collect(),
    };
    let stored = store.params_as_stored(id, &params).map_err(|e| {
        format!(
            "the params of commit {id}: {}",
            replikativ_actors::error_chain(&e)
        )
    })?;
    Ok(OutgoingCommit {
        id: *id,
        bytes: commit.bytes,
        values: stored.values,
        packs: stored.packs,
        signature: commit.signature,
    })
}
