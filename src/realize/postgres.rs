//! The PostgreSQL sink (DESIGN §16), for users who outgrow one SQLite file.
//!
//! Everything lives in the schema `replikativ` of the database, which the sink creates and
//! versions itself (`meta`: the sink's format and version, and each application's schema
//! version), so it works on an empty database made by plain `createdb`. A database whose
//! versions are newer than this build, a `replikativ` schema that is someone else's, or a role
//! without the rights the sink needs are refused with [`SinkError::Unusable`] saying what to do.
//!
//! Exactly once: a commit is applied in one Postgres transaction that first claims the commit
//! (`INSERT INTO applied … ON CONFLICT DO NOTHING`; nothing claimed: already applied, roll
//! back), then runs the handlers, bumps `ops_applied` and commits. Two analyzers may share one
//! database: a second claim of the same commit waits for the first transaction and then finds
//! the row (or takes over if the first rolled back), so each commit is applied once whoever
//! applies it; effects that race on other rows (the same tweet in two commits) fail with a
//! transient unique violation and are retried.
//!
//! Handlers get a *run* of consecutive transactions of their op at once, so they can write in
//! bulk (`COPY`); the blocking client (`postgres`, over tokio-postgres) is used on the sink's
//! own thread, which runs no async runtime.

mod schema;
mod target;
mod tls;

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use postgres::{Client, Statement, Transaction};

use self::schema::{Found, check_rights, found, refused_or};
pub use self::target::{PgTarget, TargetError, redact};
pub use self::tls::{PgTls, Verify};
use super::sink::{HandlerError, Sink, SinkError, SkippedCommit, TxParams, now_ms};
use crate::id::Id;
use replikativ_actors::panic_message;

/// The `meta.format` value of a replikativ Postgres sink.
pub const PG_FORMAT: &str = "replikativ-postgres-sink";
/// The version of the sink's own tables this build writes.
pub const PG_SINK_VERSION: i64 = 1;

/// Serializes schema changes of concurrent sinks (an advisory lock key: "rplktv").
const SCHEMA_LOCK: i64 = 0x72_70_6c_6b_74_76;

const SINK_V1: &str = "
CREATE SCHEMA replikativ;
CREATE TABLE replikativ.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE replikativ.applied (commit_id text PRIMARY KEY, at_ms bigint NOT NULL);
CREATE TABLE replikativ.skipped (commit_id text PRIMARY KEY, reason text NOT NULL,
                                 at_ms bigint NOT NULL);
CREATE TABLE replikativ.counters (name text PRIMARY KEY, value bigint NOT NULL);
";

/// The commit a handler applies.
#[derive(Clone, Copy, Debug)]
pub struct CommitContext<'a> {
    /// The commit.
    pub commit: Id,
    /// Its author's key, `unsigned`, or `None` when the realizer did not say.
    pub author: Option<&'a str>,
}

/// A handler's failure at the `index`-th transaction of the run it was given.
#[derive(Debug)]
pub struct RunError {
    /// Index in the run.
    pub index: usize,
    /// Why.
    pub error: HandlerError,
}

impl From<postgres::Error> for RunError {
    fn from(e: postgres::Error) -> RunError {
        RunError {
            index: 0,
            error: HandlerError::Postgres(e),
        }
    }
}

/// A handler: applies a run of one op's params (one or more, in commit order) inside the
/// sink's open transaction.
pub type PgHandler = Box<
    dyn Fn(&mut Transaction<'_>, &CommitContext<'_>, &[&[u8]]) -> Result<(), RunError>
        + Send
        + 'static,
>;

/// A PostgreSQL sink with handlers chosen by op name.
pub struct PostgresSink {
    client: Client,
    target: PgTarget,
    handlers: HashMap<String, PgHandler>,
    claim: Statement,
    count_ops: Statement,
}

impl std::fmt::Debug for PostgresSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ops: Vec<&String> = self.handlers.keys().collect();
        ops.sort();
        f.debug_struct("PostgresSink")
            .field("target", &self.target)
            .field("ops", &ops)
            .finish()
    }
}

/// Maps a client error to [`SinkError::Postgres`] saying what the sink was doing.
pub(crate) fn pg(doing: impl Into<String>) -> impl FnOnce(postgres::Error) -> SinkError {
    let doing = doing.into();
    move |source| SinkError::Postgres {
        doing,
        source: Box::new(source),
    }
}

impl PostgresSink {
    /// Connects and creates (or checks) the sink's schema.
    pub fn open(target: &PgTarget) -> Result<PostgresSink, SinkError> {
        Self::open_as(target, true)
    }

    /// Connects to a database that already holds the sink (for `realize-skip`).
    pub fn open_existing(target: &PgTarget) -> Result<PostgresSink, SinkError> {
        Self::open_as(target, false)
    }

    fn open_as(target: &PgTarget, create: bool) -> Result<PostgresSink, SinkError> {
        let unusable = |reason: String| SinkError::Unusable {
            target: target.to_string(),
            reason,
        };
        let doing = format!("opening {target}");
        let mut client = target
            .connect()
            .map_err(pg(format!("connecting to {target}")))?;
        let mut tx = client.transaction().map_err(pg(&doing))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map_err(pg(&doing))?;
        match found(&mut tx).map_err(pg(&doing))? {
            Found::Ours { version } if version > PG_SINK_VERSION => {
                return Err(unusable(format!(
                    "its replikativ schema has version {version}, newer than this build's {PG_SINK_VERSION}: use a newer replikativ"
                )));
            }
            Found::Ours { .. } => {}
            Found::Foreign(why) => return Err(unusable(why)),
            Found::Nothing if !create => {
                return Err(unusable(format!(
                    "database {} holds no replikativ sink (realize into it first with `replikativ analyze --postgres URL`)",
                    target.dbname()
                )));
            }
            Found::Nothing => {
                tx.batch_execute(SINK_V1)
                    .map_err(|e| refused_or(e, target, "create the schema replikativ", &doing))?;
                tx.execute(
                    "INSERT INTO replikativ.meta (key, value) VALUES ('format', $1), ('version', $2)",
                    &[&PG_FORMAT, &PG_SINK_VERSION.to_string()],
                )
                .map_err(pg(&doing))?;
            }
        }
        tx.commit().map_err(pg(&doing))?;
        check_rights(&mut client, target)?;
        let claim = client
            .prepare(
                "INSERT INTO replikativ.applied (commit_id, at_ms) VALUES ($1, $2)
                 ON CONFLICT (commit_id) DO NOTHING",
            )
            .map_err(pg(&doing))?;
        let count_ops = client
            .prepare(
                "INSERT INTO replikativ.counters (name, value) VALUES ('ops_applied', $1)
                 ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
            )
            .map_err(pg(&doing))?;
        Ok(PostgresSink {
            client,
            target: target.clone(),
            handlers: HashMap::new(),
            claim,
            count_ops,
        })
    }

    /// Brings the application `name`'s tables to the version `migrations.len()`: runs the
    /// migrations the database has not had (`migrations[i]` makes version `i + 1`), in one
    /// transaction. A database with a newer version of them is refused.
    pub fn with_schema(
        mut self,
        name: &str,
        migrations: &[&str],
    ) -> Result<PostgresSink, SinkError> {
        let target = self.target.clone();
        let doing = format!("creating the {name} tables in {target}");
        let key = format!("schema:{name}");
        let mut tx = self.client.transaction().map_err(pg(&doing))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map_err(pg(&doing))?;
        let have: i64 = tx
            .query_opt("SELECT value FROM replikativ.meta WHERE key = $1", &[&key])
            .map_err(pg(&doing))?
            .map(|row| row.get::<_, String>(0).parse().unwrap_or(i64::MAX))
            .unwrap_or(0);
        let want = migrations.len() as i64;
        if have > want {
            return Err(SinkError::Unusable {
                target: target.to_string(),
                reason: format!(
                    "its {name} tables have version {have}, newer than this build's {want}: use a newer replikativ"
                ),
            });
        }
        for sql in &migrations[have as usize..] {
            tx.batch_execute(sql).map_err(|e| {
                refused_or(e, &target, &format!("create the {name} tables"), &doing)
            })?;
        }
        tx.execute(
            "INSERT INTO replikativ.meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &want.to_string()],
        )
        .map_err(pg(&doing))?;
        tx.commit().map_err(pg(&doing))?;
        check_rights(&mut self.client, &target)?;
        Ok(self)
    }

    /// Registers the handler of `op` (replacing an earlier one).
    pub fn handler<F>(mut self, op: &str, handler: F) -> PostgresSink
    where
        F: Fn(&mut Transaction<'_>, &CommitContext<'_>, &[&[u8]]) -> Result<(), RunError>
            + Send
            + 'static,
    {
        self.handlers.insert(op.to_string(), Box::new(handler));
        self
    }

    /// The connection, e.g. to prepare a handler's statements.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The database.
    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    fn apply_as(
        &mut self,
        commit: Id,
        author: Option<&str>,
        txs: &[TxParams],
    ) -> Result<(), SinkError> {
        let mut tx = self
            .client
            .transaction()
            .map_err(pg(format!("beginning commit {commit}")))?;
        let claimed = tx
            .execute(&self.claim, &[&commit.to_hex(), &now_ms()])
            .map_err(pg(format!("checkpointing commit {commit}")))?;
        if claimed == 0 {
            return Ok(()); // applied already; dropping `tx` rolls the empty transaction back
        }
        let context = CommitContext { commit, author };
        let mut start = 0;
        while start < txs.len() {
            let op = &txs[start].0;
            let len = txs[start..].iter().take_while(|(o, _)| o == op).count();
            let Some(handler) = self.handlers.get(op) else {
                return Err(SinkError::UnknownOp {
                    commit,
                    tx: start,
                    op: op.clone(),
                });
            };
            let params: Vec<&[u8]> = txs[start..start + len]
                .iter()
                .map(|(_, b)| &b[..])
                .collect();
            // A panicking handler must not poison the sink: dropping `tx` rolls back.
            match catch_unwind(AssertUnwindSafe(|| handler(&mut tx, &context, &params))) {
                Ok(Ok(())) => {}
                Ok(Err(RunError { index, error })) => {
                    let (tx, op) = (start + index, op.clone());
                    return Err(match error {
                        HandlerError::BadParams(source) => SinkError::BadParams {
                            commit,
                            tx,
                            op,
                            source,
                        },
                        error => SinkError::Handler {
                            commit,
                            tx,
                            op,
                            source: Box::new(error),
                        },
                    });
                }
                Err(payload) => {
                    return Err(SinkError::HandlerPanicked {
                        commit,
                        tx: start,
                        op: op.clone(),
                        message: panic_message(payload.as_ref()),
                    });
                }
            }
            start += len;
        }
        tx.execute(&self.count_ops, &[&(txs.len() as i64)])
            .map_err(pg(format!("counting the ops of commit {commit}")))?;
        tx.commit()
            .map_err(pg(format!("committing commit {commit}")))
    }
}

impl Sink for PostgresSink {
    fn applied(&mut self) -> Result<HashSet<Id>, SinkError> {
        let rows = self
            .client
            .query("SELECT commit_id FROM replikativ.applied", &[])
            .map_err(pg("reading the applied set"))?;
        rows.iter()
            .map(|row| {
                let hex: &str = row.get(0);
                hex.parse::<Id>().map_err(|e| SinkError::Unusable {
                    target: self.target.to_string(),
                    reason: format!("replikativ.applied holds {hex:?}, not a commit id: {e}"),
                })
            })
            .collect()
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
        let mut tx = self.client.transaction().map_err(pg(&doing))?;
        let now = now_ms();
        if tx
            .execute(&self.claim, &[&commit.to_hex(), &now])
            .map_err(pg(&doing))?
            == 0
        {
            return Ok(());
        }
        tx.execute(
            "INSERT INTO replikativ.skipped (commit_id, reason, at_ms) VALUES ($1, $2, $3)",
            &[&commit.to_hex(), &reason, &now],
        )
        .map_err(pg(&doing))?;
        tx.commit().map_err(pg(&doing))
    }

    fn skipped(&mut self) -> Result<Vec<SkippedCommit>, SinkError> {
        let rows = self
            .client
            .query(
                "SELECT commit_id, reason, at_ms FROM replikativ.skipped
                 ORDER BY at_ms, commit_id COLLATE \"C\"",
                &[],
            )
            .map_err(pg("reading the skipped commits"))?;
        rows.iter()
            .map(|row| {
                let hex: &str = row.get(0);
                let commit = hex.parse::<Id>().map_err(|e| SinkError::Unusable {
                    target: self.target.to_string(),
                    reason: format!("replikativ.skipped holds {hex:?}, not a commit id: {e}"),
                })?;
                Ok(SkippedCommit {
                    commit,
                    reason: row.get(1),
                    at_ms: row.get(2),
                })
            })
            .collect()
    }
}
