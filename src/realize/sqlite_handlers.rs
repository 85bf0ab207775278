//! How the SQLite sink runs one commit's transactions through its handlers, inside the
//! commit's SQLite transaction.
//!
//! A handler takes a decoded JSON value, the params bytes, or comes in two halves
//! ([`SqliteSink::prepared_handler`](super::SqliteSink::prepared_handler)): `prepare` reads
//! the params into a row without touching the database, `apply` writes the row. A commit
//! with many prepared transactions is pipelined: a second thread prepares them in order while
//! this thread applies the ones before (the params of a commit of 1,000 tweets are decoded
//! beside the SQLite work instead of before it). Results, errors and panics are taken in
//! transaction order, so the outcome is the same as applying them one by one: the first
//! failure, by transaction index, fails the commit and rolls it all back.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, sync_channel};

use rusqlite::Transaction;

use super::params::decode_params;
use super::sink::{HandlerError, SinkError, TxParams};
use crate::id::Id;
use replikativ_actors::panic_message;

/// A prepared row, type-erased (each prepared handler downcasts its own).
pub(crate) type Prepared = Box<dyn Any + Send>;

/// The first half of a prepared handler: params bytes to a row, no database.
pub(crate) type PrepareFn = dyn Fn(&[u8]) -> Result<Prepared, HandlerError> + Send + Sync;

/// The second half: writes a prepared row.
pub(crate) type ApplyFn = dyn Fn(&Transaction<'_>, Prepared) -> Result<(), HandlerError> + Send;

/// A handler as registered.
pub(crate) enum Handler {
    /// Takes the params decoded to JSON.
    Value(super::SqliteHandler),
    /// Takes the params bytes.
    Bytes(super::sqlite::SqliteBytesHandler),
    /// Prepares a row from the bytes (possibly on another thread), then writes it.
    Prepared {
        /// Bytes to row.
        prepare: Box<PrepareFn>,
        /// Row to database.
        apply: Box<ApplyFn>,
    },
}

/// From this many prepared transactions in one commit on, a second thread prepares them
/// (fewer cost less than a thread).
const PIPELINE_FROM: usize = 64;

/// Rows prepared ahead of the writer at most.
const AHEAD: usize = 256;

/// A handler's outcome: its result, or the panic it raised.
type Outcome<T> = std::thread::Result<Result<T, HandlerError>>;

/// Applies `txs` of `commit` through `handlers` within `tx`, then counts them and records
/// the commit as applied.
pub(crate) fn apply_in(
    tx: &Transaction<'_>,
    handlers: &HashMap<String, Handler>,
    commit: Id,
    txs: &[TxParams],
) -> Result<(), SinkError> {
    let jobs: Vec<(&PrepareFn, &[u8])> = txs
        .iter()
        .filter_map(|(op, bytes)| match handlers.get(op) {
            Some(Handler::Prepared { prepare, .. }) => Some((prepare.as_ref(), bytes.as_slice())),
            _ => None,
        })
        .collect();
    std::thread::scope(|scope| {
        let ahead = if jobs.len() >= PIPELINE_FROM {
            prepare_ahead(scope, jobs)
        } else {
            None
        };
        for (i, (op, bytes)) in txs.iter().enumerate() {
            let Some(handler) = handlers.get(op) else {
                return Err(SinkError::UnknownOp {
                    commit,
                    tx: i,
                    op: op.clone(),
                });
            };
            let bad_params = |source| SinkError::BadParams {
                commit,
                tx: i,
                op: op.clone(),
                source,
            };
            // A panicking handler must not poison the sink: the unwind is caught here and
            // the caller rolls the transaction back by dropping it.
            let outcome: Outcome<()> = match handler {
                Handler::Value(handler) => {
                    let value = decode_params(bytes).map_err(bad_params)?;
                    catch_unwind(AssertUnwindSafe(|| handler(tx, &value)))
                }
                Handler::Bytes(handler) => catch_unwind(AssertUnwindSafe(|| handler(tx, bytes))),
                Handler::Prepared { prepare, apply } => {
                    let made = match &ahead {
                        Some(rows) => rows.recv().unwrap_or_else(|_| {
                            Ok(Err(HandlerError::Invalid {
                                reason: "the thread preparing rows stopped".into(),
                            }))
                        }),
                        None => catch_unwind(AssertUnwindSafe(|| prepare(bytes))),
                    };
                    match made {
                        Ok(Ok(row)) => catch_unwind(AssertUnwindSafe(|| apply(tx, row))),
                        Ok(Err(e)) => Ok(Err(e)),
                        Err(panic) => Err(panic),
                    }
                }
            };
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(HandlerError::BadParams(source))) => return Err(bad_params(source)),
                Ok(Err(source)) => {
                    return Err(SinkError::Handler {
                        commit,
                        tx: i,
                        op: op.clone(),
                        source: Box::new(source),
                    });
                }
                Err(payload) => {
                    return Err(SinkError::HandlerPanicked {
                        commit,
                        tx: i,
                        op: op.clone(),
                        message: panic_message(payload.as_ref()),
                    });
                }
            }
        }
        // Returning drops `ahead`: a preparer still running stops at its next send.
        Ok(())
    })?;
    tx.execute(
        "INSERT INTO counters (name, value) VALUES ('ops_applied', ?1)
         ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
        [txs.len() as i64],
    )
    .map_err(storage(format!("counting the ops of commit {commit}")))?;
    tx.execute(
        "INSERT INTO applied (commit_id, at_ms) VALUES (?1, ?2)",
        rusqlite::params![commit.to_hex(), super::sink::now_ms()],
    )
    .map_err(storage(format!("checkpointing commit {commit}")))?;
    Ok(())
}

/// Prepares `jobs` in order on a scoped thread; their outcomes in order. `None` when no
/// thread can be had (the caller then prepares each itself).
fn prepare_ahead<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    jobs: Vec<(&'scope PrepareFn, &'scope [u8])>,
) -> Option<Receiver<Outcome<Prepared>>> {
    let (send, rows) = sync_channel(AHEAD);
    std::thread::Builder::new()
        .name("realize-prepare".into())
        .spawn_scoped(scope, move || {
            for (prepare, bytes) in jobs {
                let made = catch_unwind(AssertUnwindSafe(|| prepare(bytes)));
                if send.send(made).is_err() {
                    return;
                }
            }
        })
        .ok()?;
    Some(rows)
}

fn storage(doing: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> SinkError {
    let doing = doing.into();
    move |source| SinkError::Storage {
        doing,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests;
