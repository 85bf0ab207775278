//! How the sink finds its schema in a database, and the rights it checks there.

use postgres::{Client, Transaction};

use super::{PG_FORMAT, PgTarget, pg};
use crate::realize::sink::SinkError;

/// Where the database stands.
pub(super) enum Found {
    Nothing,
    Ours { version: i64 },
    Foreign(String),
}

/// What the database holds under the name `replikativ`.
pub(super) fn found(tx: &mut Transaction<'_>) -> Result<Found, postgres::Error> {
    let row = tx.query_one(
        "SELECT to_regnamespace('replikativ') IS NOT NULL, to_regclass('replikativ.meta') IS NOT NULL",
        &[],
    )?;
    let (schema, meta): (bool, bool) = (row.get(0), row.get(1));
    if !schema {
        return Ok(Found::Nothing);
    }
    if !meta {
        return Ok(Found::Foreign(
            "it has a schema named replikativ that is not a replikativ sink (no replikativ.meta)"
                .into(),
        ));
    }
    let rows = tx.query(
        "SELECT key, value FROM replikativ.meta WHERE key IN ('format', 'version')",
        &[],
    )?;
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.get::<_, &str>(0) == k)
            .map(|r| r.get::<_, String>(1))
    };
    match (
        get("format").as_deref(),
        get("version").map(|v| v.parse::<i64>()),
    ) {
        (Some(PG_FORMAT), Some(Ok(version))) => Ok(Found::Ours { version }),
        (format, _) => Ok(Found::Foreign(format!(
            "replikativ.meta says format {format:?}, this build reads {PG_FORMAT:?}"
        ))),
    }
}

/// A refusal for lack of rights becomes [`SinkError::Unusable`] naming the role and the fix.
pub(super) fn refused_or(
    e: postgres::Error,
    target: &PgTarget,
    what: &str,
    doing: &str,
) -> SinkError {
    if e.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
        let role = target
            .config()
            .get_user()
            .unwrap_or("this role")
            .to_string();
        return SinkError::Unusable {
            target: target.to_string(),
            reason: format!(
                "role {role} may not {what} in database {db} ({e}): run analyze once as the database owner, or GRANT CREATE ON DATABASE {db} TO {role}",
                db = target.dbname(),
            ),
        };
    }
    pg(doing)(e)
}

/// Refuses a role that cannot read and write every table of the schema (listing what lacks).
pub(super) fn check_rights(client: &mut Client, target: &PgTarget) -> Result<(), SinkError> {
    let rows = client
        .query(
            "SELECT 'schema replikativ', 'USAGE' WHERE NOT has_schema_privilege('replikativ', 'USAGE')
             UNION ALL
             SELECT 'replikativ.' || c.relname, p.privilege
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE']) AS p (privilege)
             WHERE n.nspname = 'replikativ' AND c.relkind = 'r'
               AND NOT has_table_privilege(c.oid, p.privilege)",
            &[],
        )
        .map_err(pg(format!("checking the rights of the role on {target}")))?;
    if rows.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = rows
        .iter()
        .map(|r| format!("{} on {}", r.get::<_, &str>(1), r.get::<_, &str>(0)))
        .collect();
    let role = target.config().get_user().unwrap_or("this role");
    Err(SinkError::Unusable {
        target: target.to_string(),
        reason: format!(
            "role {role} lacks {} (the sink reads and writes every table of the schema replikativ: GRANT USAGE ON SCHEMA replikativ and SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA replikativ TO {role})",
            missing.join(", ")
        ),
    })
}
