//! SQL for `audit_events`. The domain side (what an event is) is `crate::audit`.

use sqlx::{Any, AnyConnection, Executor};

use crate::audit::{AuditEvent, AuditFilter};

#[derive(Debug, sqlx::FromRow)]
pub struct AuditEventRow {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub actor: String,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub details: String,
}

pub async fn insert(conn: &mut AnyConnection, at: i64, event: &AuditEvent) -> Result<(), sqlx::Error> {
    insert_many(conn, &[(at, event)]).await
}

/// Writes `rows` with one statement: the audit journal's batches, where one
/// round trip to the database per row cost more than the rows themselves.
pub async fn insert_many(conn: &mut AnyConnection, rows: &[(i64, &AuditEvent)]) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 9;
    if rows.is_empty() {
        return Ok(());
    }
    let mut sql = String::from(
        "INSERT INTO audit_events (at, event, actor, client_id, subject, ip, outcome, reason, details) VALUES ",
    );
    for i in 0..rows.len() {
        let first = i * COLUMNS + 1;
        let placeholders: Vec<String> = (first..first + COLUMNS).map(|n| format!("${n}")).collect();
        sql.push_str(if i == 0 { "(" } else { ", (" });
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
    }
    // Only placeholders are generated; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (at, event) in rows {
        query = query
            .bind(*at)
            .bind(event.kind.as_str())
            .bind(event.actor.name.as_str())
            .bind(event.client_id.as_deref())
            .bind(event.subject.as_deref())
            .bind(event.actor.ip.as_deref())
            .bind(event.outcome.as_str())
            .bind(event.reason.as_deref())
            .bind(event.details.to_string());
    }
    query.execute(conn).await?;
    Ok(())
}

/// The rows that match every filter that is set, newest first; `before` is a
/// keyset cursor (rows with a smaller id), so paging is stable while events
/// keep arriving.
pub async fn query<'e, E>(executor: E, filter: &AuditFilter) -> Result<Vec<AuditEventRow>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query_as(
        "SELECT id, at, event, actor, client_id, subject, ip, outcome, reason, details
         FROM audit_events
         WHERE ($1 IS NULL OR at >= $1)
           AND ($2 IS NULL OR at < $2)
           AND ($3 IS NULL OR client_id = $3)
           AND ($4 IS NULL OR subject = $4)
           AND ($5 IS NULL OR event = $5)
           AND ($6 IS NULL OR outcome = $6)
           AND ($7 IS NULL OR id < $7)
         ORDER BY id DESC
         LIMIT $8",
    )
    .bind(filter.since)
    .bind(filter.until)
    .bind(filter.client_id.as_deref())
    .bind(filter.subject.as_deref())
    .bind(filter.event.as_deref())
    .bind(filter.outcome.map(|o| o.as_str()))
    .bind(filter.before)
    .bind(filter.limit)
    .fetch_all(executor)
    .await
}

pub async fn list<'e, E>(executor: E, event: Option<&str>, limit: i64) -> Result<Vec<AuditEventRow>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query_as(
        "SELECT id, at, event, actor, client_id, subject, ip, outcome, reason, details
         FROM audit_events
         WHERE ($1 IS NULL OR event = $1)
         ORDER BY id DESC
         LIMIT $2",
    )
    .bind(event)
    .bind(limit)
    .fetch_all(executor)
    .await
}
