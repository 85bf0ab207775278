//! What a [`SyncSession`](super::SyncSession) asks its driver to do, and why it stops.

use std::time::Duration;

use crate::crdt::commit::{CommitDecodeError, CrdtKey, EncodedCommit};
use crate::id::{Id, Verified};
use crate::identity::PublicKey;
use crate::protocol::{ErrorCode, Message, ProtocolError};

use super::handshake::HandshakeError;

/// One instruction for the driver (the connection actor), carried out in order.
#[derive(Debug)]
pub enum Effect {
    /// Send this message as one frame.
    Send(Message),
    /// The peer proved it holds the secret key of `peer`. The driver answers, before it
    /// feeds the session anything else, with
    /// [`authorize`](super::SyncSession::authorize) (the rights this key has here) or
    /// [`refuse`](super::SyncSession::refuse).
    Authenticated {
        /// The peer's key.
        peer: PublicKey,
    },
    /// We refused a request of the peer for a right it lacks here (an `Error` naming the
    /// CDVCS and the right was sent; the connection stays). Log it.
    Refused {
        /// The peer.
        peer: PublicKey,
        /// Which CDVCS.
        crdt: CrdtKey,
        /// What it asked for.
        request: Request,
    },
    /// The peer (dialled by us) offers more CDVCSs new to this node than `max` (the
    /// subscription limit): those beyond it are not taken. Reported once per session; tell
    /// the operator how to take them (mirror, or a higher limit).
    Declined {
        /// The limit.
        max: usize,
    },
    /// The peer refused one of our requests (its `Forbidden` error; the connection stays).
    /// Log it.
    RefusedByPeer {
        /// Its explanation, naming the CDVCS and the right.
        message: String,
    },
    /// Load `ids` (in this order) with the values their transactions reference, frame them
    /// with [`plan_frames`](super::plan_frames) as values, then commits, then `Heads{heads}`,
    /// and send the frames.
    SendCommits {
        /// Which CRDT.
        crdt: CrdtKey,
        /// Commits the peer lacks, parents before children.
        ids: Vec<Id>,
        /// Our heads these commits lead to, announced after them.
        heads: Vec<Id>,
    },
    /// Store and apply this verified batch atomically, then call
    /// [`on_applied`](super::SyncSession::on_applied) (or
    /// [`on_apply_failed`](super::SyncSession::on_apply_failed)). Batches of one CRDT must be
    /// applied in the order given. After a durable apply the driver relays by calling
    /// `on_local_change` on every *other* session.
    Apply {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The verified content.
        batch: VerifiedBatch,
    },
    /// The peer shared a CRDT we have no replica of: create it empty (root only) before
    /// carrying out the effects that follow.
    EnsureReplica(CrdtKey),
    /// `crdt` changed here while it was offered but not yet shared: call
    /// [`on_local_change`](super::SyncSession::on_local_change) for it now that it is.
    Recheck(CrdtKey),
    /// The peer holds exactly `heads` of `crdt`: its digest matched ours, so it sends no
    /// `Heads` of it. Record them as if it had.
    PeerHeads {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The heads both sides hold.
        heads: Vec<crate::id::Id>,
    },
    /// Persist `heads` as the hint for what `peer` holds of `crdt` (see
    /// [`Graphs::known_heads_hint`](super::Graphs::known_heads_hint)).
    SaveKnownHeads {
        /// The peer's key.
        peer: PublicKey,
        /// Which CRDT.
        crdt: CrdtKey,
        /// Heads the peer announced and we hold.
        heads: Vec<Id>,
    },
    /// A received batch failed verification; nothing of it was applied. Log/report it.
    Reject {
        /// The peer that sent it (`None` before it proved its key).
        peer: Option<PublicKey>,
        /// Which CRDT.
        crdt: Option<CrdtKey>,
        /// The offending value or commit id (the claimed one for a hash mismatch).
        id: Id,
        /// What was wrong.
        reason: SyncError,
    },
    /// Close the connection; the session is finished and ignores further input.
    Close {
        /// Why.
        reason: CloseReason,
    },
}

/// A request that needs a right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// To subscribe to a CDVCS (and receive it): needs read.
    Subscribe,
    /// To have commits stored and relayed: needs write.
    Push,
}

impl Request {
    /// The right it needs, as the allow file spells it.
    pub fn right(self) -> &'static str {
        match self {
            Request::Subscribe => "read",
            Request::Push => "write",
        }
    }
}

/// Received commits and values that passed verification.
///
/// Guarantees: every value and commit was hashed once on receipt and matched its id (the
/// store takes these ids without hashing again); every commit decoded; every
/// parent is earlier in `commits` or already present locally (or in an earlier, not yet
/// confirmed batch of this session); commits are parents-before-children and none is already
/// present locally.
///
/// The driver must check against its store: every id in `values_to_check` (transaction params
/// not carried in this batch) is present; otherwise it refuses the whole batch and calls
/// [`on_apply_failed`](super::SyncSession::on_apply_failed). That list is complete: the driver
/// need not recompute it from the commits.
#[derive(Debug, Default)]
pub struct VerifiedBatch {
    /// Values referenced by the commits, verified on receipt.
    pub values: Vec<Verified>,
    /// Packs holding values referenced by the commits, each value verified on receipt;
    /// stored as received.
    pub packs: Vec<crate::pack::VerifiedPack>,
    /// The commits, parents before children.
    pub commits: Vec<EncodedCommit>,
    /// Param ids referenced by commits with parents but not carried here, each once: must
    /// already be in the store.
    pub values_to_check: Vec<Id>,
}

/// Why received content was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The bytes hash to another id than claimed.
    #[error("bytes claimed as {claimed} hash to {actual}")]
    HashMismatch {
        /// The claimed id.
        claimed: Id,
        /// The hash of the received bytes.
        actual: Id,
    },
    /// The bytes are not a commit record.
    #[error("commit {id} cannot be decoded")]
    UndecodableCommit {
        /// Its id.
        id: Id,
        /// The decoder's error.
        #[source]
        source: CommitDecodeError,
    },
    /// A parent is neither in the batch nor held locally.
    #[error("commit {commit} has parent {parent}, which is neither in the batch nor held")]
    MissingParent {
        /// The orphan commit.
        commit: Id,
        /// The parent that cannot be obtained.
        parent: Id,
    },
    /// The frame itself was refused by the codec.
    #[error("the frame was refused")]
    Protocol(#[source] ProtocolError),
    /// A received pack was refused (too large once decompressed, damaged, or a value that
    /// does not hash to its id).
    #[error("a received pack was refused")]
    Pack(#[source] crate::pack::PackCheckError),
}

/// Why a session closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer's frame broke the protocol.
    #[error("protocol error from peer")]
    Protocol(#[source] ProtocolError),
    /// A message arrived in a state that does not allow it.
    #[error("unexpected {kind} message: {detail}")]
    Unexpected {
        /// The message kind.
        kind: &'static str,
        /// What was expected instead.
        detail: &'static str,
    },
    /// The authentication handshake failed.
    #[error("handshake failed")]
    Handshake(#[source] HandshakeError),
    /// The handshake did not complete in time.
    #[error("the handshake did not complete within {after:?}")]
    HandshakeTimeout {
        /// The bound.
        after: Duration,
    },
    /// This node does not admit the peer's key (the message says what to do).
    #[error("{message}")]
    Refused {
        /// Why, and how to admit it.
        message: String,
    },
    /// The peer sent an `Error` message.
    #[error("peer refused: {code:?}: {message}")]
    PeerError {
        /// Its code.
        code: ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// A received batch failed verification (see the preceding `Reject`).
    #[error("batch for {crdt} refused: {id} failed verification")]
    Verification {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The offending id.
        id: Id,
    },
    /// A received commit's parent can be obtained neither from the batch nor locally.
    #[error("batch for {crdt} refused: commit {commit} lacks parent {parent}")]
    MissingParents {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The orphan commit.
        commit: Id,
        /// Its missing parent.
        parent: Id,
    },
    /// Buffered values waiting for their commits exceeded the bound.
    #[error("{bytes} bytes of values buffered for {crdt} exceed the limit of {max}")]
    PendingOverflow {
        /// Which CRDT.
        crdt: CrdtKey,
        /// Buffered bytes including the frame that broke the bound.
        bytes: usize,
        /// The bound.
        max: usize,
    },
    /// The driver could not store or apply a batch.
    #[error("applying a batch for {crdt} failed: {reason}")]
    ApplyFailed {
        /// Which CRDT.
        crdt: CrdtKey,
        /// The driver's explanation.
        reason: String,
    },
    /// The peer asked to share more CRDTs on this connection than allowed.
    #[error(
        "too many subscriptions: {count} CDVCSs new to this node on one connection exceed its limit of {max} (`peer --max-subscriptions N` raises it)"
    )]
    TooManySubscriptions {
        /// How many replicas it would create.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl CloseReason {
    /// The `Error` message telling the peer why, if it should be told.
    pub fn reply(&self) -> Option<Message> {
        let code = match self {
            CloseReason::Protocol(e) => return Some(e.reply()),
            CloseReason::Unexpected { .. } => ErrorCode::Unexpected,
            CloseReason::Handshake(e) => match e {
                HandshakeError::WrongVersion { .. } => ErrorCode::WrongVersion,
                HandshakeError::Unexpected { .. } => ErrorCode::Unexpected,
                _ => ErrorCode::Authentication,
            },
            CloseReason::HandshakeTimeout { .. } => ErrorCode::Timeout,
            CloseReason::Refused { .. } => ErrorCode::Unauthorized,
            CloseReason::PeerError { .. } => return None,
            CloseReason::Verification { .. } => ErrorCode::Verification,
            CloseReason::MissingParents { .. } => ErrorCode::MissingParents,
            CloseReason::PendingOverflow { .. } | CloseReason::TooManySubscriptions { .. } => {
                ErrorCode::Overloaded
            }
            CloseReason::ApplyFailed { .. } => ErrorCode::Internal,
        };
        let message = match self {
            CloseReason::Handshake(e) => format!("{self}: {e}"),
            _ => self.to_string(),
        };
        Some(Message::Error { code, message })
    }

    /// Whether reconnecting would meet the same refusal: the peer refused our key or this
    /// node refused the peer's, or a handshake failed.
    pub fn is_refusal(&self) -> bool {
        use crate::sync::handshake::HandshakeError;
        match self {
            CloseReason::Refused { .. } => true,
            // A message out of order is a broken connection, not a refusal: dial again.
            CloseReason::Handshake(e) => !matches!(e, HandshakeError::Unexpected { .. }),
            CloseReason::PeerError { code, .. } => matches!(
                code,
                ErrorCode::Unauthorized | ErrorCode::Authentication | ErrorCode::WrongVersion
            ),
            CloseReason::Protocol(ProtocolError::WrongVersion { .. }) => true,
            _ => false,
        }
    }
}
