//! The embedded default sink: SQLite (DESIGN §7).
//!
//! Exactly once: a commit's effects, the `ops_applied` counter and the commit's row in
//! `applied` are written in one `BEGIN IMMEDIATE` transaction, which first checks `applied`
//! (a second apply of the same commit is a no-op). A handler error or panic rolls it all back.
//! WAL mode with a busy timeout lets readers (`replikativ query`) run while the sink writes;
//! `synchronous = NORMAL` may lose the last transactions on power loss, but effects and
//! checkpoint are lost together, so the realizer re-applies them exactly once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde_json::Value;

use super::sink::{HandlerError, Sink, SinkError, SkippedCommit, TxParams, now_ms};
use super::sqlite_handlers::{Handler, apply_in};
use crate::id::Id;

/// The `meta.format` value that marks a replikativ SQLite sink.
pub const SQLITE_FORMAT: &str = "replikativ-sqlite-sink/1";

/// How long a writer or reader waits for a lock before reporting busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The sink's own tables; applications add theirs with [`SqliteSink::with_schema`].
pub const SINK_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied (commit_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS skipped (commit_id TEXT PRIMARY KEY, reason TEXT NOT NULL,
                                    at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
";

/// An SQL expression handlers use for the author of the commit being applied (its key as
/// `ed25519:…`, `unsigned`, or NULL when the realizer did not say).
pub const COMMIT_AUTHOR: &str = "(SELECT author FROM temp.commit_context)";

/// A handler: applies one transaction's params inside the sink's open transaction.
pub type SqliteHandler =
    Box<dyn Fn(&Transaction<'_>, &Value) -> Result<(), HandlerError> + Send + 'static>;

/// A handler that reads the params bytes itself (no JSON value is built): for hot ops. It
/// reports bytes that are no JSON value as [`HandlerError::BadParams`].
pub type SqliteBytesHandler =
    Box<dyn Fn(&Transaction<'_>, &[u8]) -> Result<(), HandlerError> + Send + 'static>;

/// A SQLite sink with handlers chosen by op name.
pub struct SqliteSink {
    conn: Connection,
    path: PathBuf,
    handlers: HashMap<String, Handler>,
}

impl std::fmt::Debug for SqliteSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ops: Vec<&String> = self.handlers.keys().collect();
        ops.sort();
        f.debug_struct("SqliteSink")
            .field("path", &self.path)
            .field("ops", &ops)
            .finish()
    }
}

fn storage(doing: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> SinkError {
    let doing = doing.into();
    move |source| SinkError::Storage {
        doing,
        source: Box::new(source),
    }
}

impl SqliteSink {
    /// Opens or creates the sink at `path`: WAL mode, busy timeout, the sink's tables.
    /// A SQLite file that belongs to something else (or a newer format) is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteSink, SinkError> {
        Self::open_with(path.as_ref(), OpenFlags::default())
    }

    /// Opens an existing sink (never creates a file), e.g. for `replikativ realize-skip`.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<SqliteSink, SinkError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(SinkError::Foreign {
                path: path.to_path_buf(),
                reason: "no such file".into(),
            });
        }
        let flags = OpenFlags::default() - OpenFlags::SQLITE_OPEN_CREATE;
        let sink = Self::open_with(path, flags)?;
        Ok(sink)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<SqliteSink, SinkError> {
        let doing = format!("opening {}", path.display());
        let mut conn = Connection::open_with_flags(path, flags).map_err(storage(&doing))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(storage(&doing))?;
        // Refuse someone else's database before changing anything in it (journal mode included).
        let (tables, has_meta): (i64, bool) = conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(name = 'meta'), 0) > 0 FROM sqlite_master
                 WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| foreign_or_storage(path, &doing, e))?;
        if tables > 0 && !has_meta {
            return Err(SinkError::Foreign {
                path: path.to_path_buf(),
                reason: format!("a SQLite database of something else ({tables} tables, no meta)"),
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| foreign_or_storage(path, &doing, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(storage(&doing))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage(&doing))?;
        tx.execute_batch(SINK_SCHEMA)
            .map_err(|e| foreign_or_storage(path, &doing, e))?;
        let format: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(storage(&doing))?;
        match format.as_deref() {
            Some(SQLITE_FORMAT) => {}
            None => {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('format', ?1)",
                    [SQLITE_FORMAT],
                )
                .map_err(storage(&doing))?;
            }
            Some(other) => {
                return Err(SinkError::Foreign {
                    path: path.to_path_buf(),
                    reason: format!("format {other:?}, this build reads {SQLITE_FORMAT:?}"),
                });
            }
        }
        tx.commit().map_err(storage(&doing))?;
        // Per connection: who made the commit being applied, for handlers that record it
        // ([`COMMIT_AUTHOR`]).
        conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS commit_context (author TEXT)")
            .map_err(storage(&doing))?;
        Ok(SqliteSink {
            conn,
            path: path.to_path_buf(),
            handlers: HashMap::new(),
        })
    }

    /// Runs an application's schema (idempotent DDL such as `CREATE TABLE IF NOT EXISTS`).
    pub fn with_schema(mut self, sql: &str) -> Result<SqliteSink, SinkError> {
        let doing = format!("creating the application schema in {}", self.path.display());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage(&doing))?;
        tx.execute_batch(sql).map_err(storage(&doing))?;
        tx.commit().map_err(storage(&doing))?;
        Ok(self)
    }

    /// Registers the handler for `op` (replacing an earlier one).
    pub fn handler<F>(mut self, op: &str, handler: F) -> SqliteSink
    where
        F: Fn(&Transaction<'_>, &Value) -> Result<(), HandlerError> + Send + 'static,
    {
        self.handlers
            .insert(op.to_string(), Handler::Value(Box::new(handler)));
        self
    }

    /// Registers a handler for `op` that gets the params bytes undecoded (replacing an earlier
    /// handler).
    pub fn bytes_handler<F>(mut self, op: &str, handler: F) -> SqliteSink
    where
        F: Fn(&Transaction<'_>, &[u8]) -> Result<(), HandlerError> + Send + 'static,
    {
        self.handlers
            .insert(op.to_string(), Handler::Bytes(Box::new(handler)));
        self
    }

    /// Registers a handler for `op` in two halves (replacing an earlier handler): `prepare`
    /// reads the params bytes into a row without the database, `apply` writes it. In a commit
    /// of many such transactions the rows are prepared on a second thread, in order, while
    /// this one writes the rows before them; outcomes (errors, panics) are as if each were
    /// prepared and applied in turn.
    pub fn prepared_handler<P, F, G>(mut self, op: &str, prepare: F, apply: G) -> SqliteSink
    where
        P: Send + 'static,
        F: Fn(&[u8]) -> Result<P, HandlerError> + Send + Sync + 'static,
        G: Fn(&Transaction<'_>, P) -> Result<(), HandlerError> + Send + 'static,
    {
        let prepare = move |bytes: &[u8]| -> Result<Box<dyn std::any::Any + Send>, HandlerError> {
            Ok(Box::new(prepare(bytes)?))
        };
        let apply = move |tx: &Transaction<'_>, row: Box<dyn std::any::Any + Send>| {
            // Rows come only from this handler's own `prepare`.
            let row = row.downcast::<P>().map_err(|_| HandlerError::Invalid {
                reason: "a prepared row of another handler".into(),
            })?;
            apply(tx, *row)
        };
        self.handlers.insert(
            op.to_string(),
            Handler::Prepared {
                prepare: Box::new(prepare),
                apply: Box::new(apply),
            },
        );
        self
    }

    /// The file this sink writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying connection, for reads in tests and tools.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// "file is not a database" is a property of the file, not a passing failure.
fn foreign_or_storage(path: &Path, doing: &str, e: rusqlite::Error) -> SinkError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
        SinkError::Foreign {
            path: path.to_path_buf(),
            reason: "not a SQLite database".into(),
        }
    } else {
        SinkError::Storage {
            doing: doing.to_string(),
            source: Box::new(e),
        }
    }
}

fn is_applied(tx: &Transaction<'_>, commit: Id) -> Result<bool, SinkError> {
    tx.query_row(
        "SELECT 1 FROM applied WHERE commit_id = ?1",
        [commit.to_hex()],
        |_| Ok(()),
    )
    .optional()
    .map(|row| row.is_some())
    .map_err(storage(format!(
        "reading the checkpoint of commit {commit}"
    )))
}

impl Sink for SqliteSink {
    fn applied(&mut self) -> Result<HashSet<Id>, SinkError> {
        let mut stmt = self
            .conn
            .prepare("SELECT commit_id FROM applied")
            .map_err(storage("reading the applied set"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(storage("reading the applied set"))?;
        let mut out = HashSet::new();
        for row in rows {
            let hex = row.map_err(storage("reading the applied set"))?;
            let id = hex.parse::<Id>().map_err(|e| SinkError::Foreign {
                path: self.path.clone(),
                reason: format!("applied holds {hex:?}, not a commit id: {e}"),
            })?;
            out.insert(id);
        }
        Ok(out)
    }

    fn apply_commit(&mut self, commit: Id, txs: &[TxParams]) -> Result<(), SinkError> {
        self.apply_as(commit, None, txs)
    }

    fn apply_commit_by(
        &mut self,
        commit: Id,
        author: &str,
        txs: &[TxParams],
    ) -> Result<(), SinkError> {
        self.apply_as(commit, Some(author), txs)
    }

    fn record_skip(&mut self, commit: Id, reason: &str) -> Result<(), SinkError> {
        let doing = format!("recording the skip of commit {commit}");
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage(&doing))?;
        if is_applied(&tx, commit)? {
            return Ok(());
        }
        let now = now_ms();
        tx.execute(
            "INSERT INTO skipped (commit_id, reason, at_ms) VALUES (?1, ?2, ?3)",
            params![commit.to_hex(), reason, now],
        )
        .map_err(storage(&doing))?;
        tx.execute(
            "INSERT INTO applied (commit_id, at_ms) VALUES (?1, ?2)",
            params![commit.to_hex(), now],
        )
        .map_err(storage(&doing))?;
        tx.commit().map_err(storage(&doing))
    }

    fn skipped(&mut self) -> Result<Vec<SkippedCommit>, SinkError> {
        let doing = "reading the skipped commits";
        let mut stmt = self
            .conn
            .prepare("SELECT commit_id, reason, at_ms FROM skipped ORDER BY at_ms, commit_id")
            .map_err(storage(doing))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(storage(doing))?;
        let mut out = Vec::new();
        for row in rows {
            let (hex, reason, at_ms) = row.map_err(storage(doing))?;
            let commit = hex.parse::<Id>().map_err(|e| SinkError::Foreign {
                path: self.path.clone(),
                reason: format!("skipped holds {hex:?}, not a commit id: {e}"),
            })?;
            out.push(SkippedCommit {
                commit,
                reason,
                at_ms,
            });
        }
        Ok(out)
    }
}

impl SqliteSink {
    /// Applies `txs` of `commit` in one transaction, with `author` visible to handlers as
    /// [`COMMIT_AUTHOR`] (NULL when the caller did not say).
    fn apply_as(
        &mut self,
        commit: Id,
        author: Option<&str>,
        txs: &[TxParams],
    ) -> Result<(), SinkError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage(format!("beginning commit {commit}")))?;
        if is_applied(&tx, commit)? {
            return Ok(()); // dropping `tx` rolls back the empty transaction
        }
        tx.execute("DELETE FROM temp.commit_context", [])
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO temp.commit_context (author) VALUES (?1)",
                    [author],
                )
            })
            .map_err(storage(format!("noting the author of commit {commit}")))?;
        // On error `tx` is dropped here, which rolls back every effect of this commit.
        apply_in(&tx, &self.handlers, commit, txs)?;
        tx.commit()
            .map_err(storage(format!("committing commit {commit}")))
    }
}
