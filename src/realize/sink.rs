//! The [`Sink`] a realizer applies transactions into, and its errors (DESIGN §7).
//!
//! Contract: `apply_commit` writes a commit's effects and adds its id to the applied set in one
//! atomic step, and is a no-op for a commit already in the set, so a realizer that restarts
//! anywhere applies every commit exactly once by asking `applied()` and skipping those.

use std::collections::HashSet;

use crate::id::Id;

/// One transaction handed to a sink: the op name and the exact params bytes of the value space.
pub type TxParams = (String, Vec<u8>);

/// A commit an operator skipped, as recorded in a sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedCommit {
    /// The commit.
    pub commit: Id,
    /// The operator's reason.
    pub reason: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

/// Where realized transactions go.
pub trait Sink: Send + 'static {
    /// The checkpoint: every commit applied (or skipped) so far.
    fn applied(&mut self) -> Result<HashSet<Id>, SinkError>;

    /// Applies each transaction of `commit` in order through its op's handler and adds the
    /// commit to the applied set, all in one transaction: either everything or nothing.
    /// A commit already applied is a no-op.
    fn apply_commit(&mut self, commit: Id, txs: &[TxParams]) -> Result<(), SinkError>;

    /// Like [`apply_commit`](Self::apply_commit), telling the sink who made the commit (its
    /// author's key, or `unsigned`) for sinks that record it; by default it is not recorded.
    fn apply_commit_by(
        &mut self,
        commit: Id,
        author: &str,
        txs: &[TxParams],
    ) -> Result<(), SinkError> {
        let _ = author;
        self.apply_commit(commit, txs)
    }

    /// Operator skip of a parked commit: marks it applied without effects and records why.
    fn record_skip(&mut self, commit: Id, reason: &str) -> Result<(), SinkError>;

    /// The commits skipped so far, oldest first.
    fn skipped(&mut self) -> Result<Vec<SkippedCommit>, SinkError>;
}

/// Why a handler refused a transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandlerError {
    /// The params lack a field or hold the wrong type.
    #[error("invalid params: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The params bytes are not a JSON value (from handlers that read the bytes themselves).
    #[error("params do not decode")]
    BadParams(#[source] super::params::DecodeParamsError),
    /// The database refused a statement.
    #[error("SQL statement failed")]
    Sql(#[from] rusqlite::Error),
    /// The PostgreSQL server refused a statement or the connection failed.
    #[error("PostgreSQL statement failed")]
    Postgres(#[from] postgres::Error),
    /// Any other failure of a user handler.
    #[error("handler failed")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl HandlerError {
    /// Whether retrying cannot help (see [`SinkError::is_deterministic`]).
    pub fn is_deterministic(&self) -> bool {
        match self {
            HandlerError::Sql(e) => !sql_is_transient(e),
            HandlerError::Postgres(e) => !pg_is_transient(e),
            HandlerError::BadParams(_) | HandlerError::Invalid { .. } | HandlerError::Other(_) => {
                true
            }
        }
    }
}

/// A sink failure, with the commit, op and transaction index where it happened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// No handler for the op.
    #[error("commit {commit}, transaction {tx}: no handler for op {op:?}")]
    UnknownOp {
        /// The commit.
        commit: Id,
        /// Index of the transaction in the commit.
        tx: usize,
        /// The op name.
        op: String,
    },
    /// The params bytes are not a value the sink can read.
    #[error("commit {commit}, transaction {tx} ({op}): params do not decode")]
    BadParams {
        /// The commit.
        commit: Id,
        /// Index of the transaction.
        tx: usize,
        /// The op name.
        op: String,
        /// Decoder error.
        #[source]
        source: super::params::DecodeParamsError,
    },
    /// The handler returned an error.
    #[error("commit {commit}, transaction {tx} ({op}): handler failed")]
    Handler {
        /// The commit.
        commit: Id,
        /// Index of the transaction.
        tx: usize,
        /// The op name.
        op: String,
        /// The handler's error (boxed: it may carry a large database error).
        #[source]
        source: Box<HandlerError>,
    },
    /// The handler panicked; the transaction was rolled back.
    #[error("commit {commit}, transaction {tx} ({op}): handler panicked: {message}")]
    HandlerPanicked {
        /// The commit.
        commit: Id,
        /// Index of the transaction.
        tx: usize,
        /// The op name.
        op: String,
        /// The panic payload, if it was a string.
        message: String,
    },
    /// The sink's own storage failed (checkpoint, counters, transaction control).
    #[error("sink storage failed while {doing}")]
    Storage {
        /// What the sink was doing.
        doing: String,
        /// The database error (boxed to keep results small).
        #[source]
        source: Box<rusqlite::Error>,
    },
    /// The PostgreSQL server refused one of the sink's own statements, or the connection
    /// failed.
    #[error("PostgreSQL sink failed while {doing}")]
    Postgres {
        /// What the sink was doing.
        doing: String,
        /// The client's error (boxed to keep results small).
        #[source]
        source: Box<postgres::Error>,
    },
    /// The database cannot hold this sink: someone else's schema, a newer schema version, or
    /// rights the role lacks.
    #[error("{target}: {reason}")]
    Unusable {
        /// The database (its URL without the password).
        target: String,
        /// Why, and what to do.
        reason: String,
    },
    /// File I/O failed.
    #[error("sink I/O failed on {path} while {doing}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// What the sink was doing.
        doing: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a sink of this kind or its format is newer.
    #[error("{path} is not a replikativ sink: {reason}")]
    Foreign {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// An injected or otherwise transient failure (e.g. the memory sink's fault injection).
    #[error("transient sink failure: {reason}")]
    Transient {
        /// Why.
        reason: String,
    },
}

impl SinkError {
    /// `true` when the same commit will fail the same way again (unknown op, bad params, a
    /// handler error or panic on a poison record): the realizer parks after a few attempts.
    /// `false` for I/O, busy or locked databases and other transient causes: retry with backoff.
    pub fn is_deterministic(&self) -> bool {
        match self {
            SinkError::UnknownOp { .. }
            | SinkError::BadParams { .. }
            | SinkError::HandlerPanicked { .. }
            | SinkError::Foreign { .. }
            | SinkError::Unusable { .. } => true,
            SinkError::Postgres { source, .. } => !pg_is_transient(source),
            SinkError::Handler { source, .. } => source.is_deterministic(),
            SinkError::Storage { .. } | SinkError::Io { .. } | SinkError::Transient { .. } => false,
        }
    }
}

/// Busy, locked, I/O and full-disk errors can pass; everything else is a property of the data.
pub(crate) fn sql_is_transient(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(code) => matches!(
            code,
            DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | OutOfMemory | CannotOpen
        ),
        None => false,
    }
}

/// Lost connections, I/O, and the SQLSTATE classes of passing trouble (connection exception,
/// transaction rollback — serialization failures and deadlocks —, insufficient resources, lock
/// not available, operator intervention such as a server shutting down, system errors), and a
/// unique violation: in a database two analyzers share, a row can be committed by the other
/// between a check and a write, and the retry sees it. Everything else is a property of the
/// data or of the schema.
pub(crate) fn pg_is_transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    let Some(db) = e.as_db_error() else {
        // No server answer: I/O, TLS, timeouts are passing; a value the client cannot
        // convert is not.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
        while let Some(c) = cause {
            if c.is::<std::io::Error>() {
                return true;
            }
            cause = c.source();
        }
        // tokio-postgres names its timeouts and connect failures only in their message.
        let shown = e.to_string();
        return ["timeout", "error connecting", "error performing TLS"]
            .iter()
            .any(|m| shown.starts_with(m));
    };
    let code = db.code().code();
    matches!(&code[..2], "08" | "40" | "53" | "57" | "58") || code == "55P03" || code == "23505"
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
