//! SQL for `authorization_requests`: authorization requests waiting for the
//! user's login and consent. The flow is in `crate::authorize`.

use sqlx::{Any, AnyConnection, Executor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRow {
    pub id: String,
    pub client_id: String,
    /// JSON, `crate::authorize::ValidatedRequest`'s stored form.
    pub request: String,
    pub browser_hash: String,
    pub csrf_hash: Option<String>,
    pub subject: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut AnyConnection, row: &PendingRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO authorization_requests (id, client_id, request, browser_hash, csrf_hash, subject, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.client_id)
    .bind(&row.request)
    .bind(&row.browser_hash)
    .bind(row.csrf_hash.as_deref())
    .bind(row.subject.as_deref())
    .bind(row.created_at)
    .bind(row.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The request, unless it has expired.
pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
    now: i64,
) -> Result<Option<PendingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, client_id, request, browser_hash, csrf_hash, subject, created_at, expires_at
         FROM authorization_requests WHERE id = $1 AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(executor)
    .await
}

/// Records who logged in; `false` if the request is gone or expired.
pub async fn set_subject(conn: &mut AnyConnection, id: &str, subject: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE authorization_requests SET subject = $2 WHERE id = $1 AND expires_at > $3")
        .bind(id)
        .bind(subject)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn set_csrf_hash(conn: &mut AnyConnection, id: &str, csrf_hash: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE authorization_requests SET csrf_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(csrf_hash)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a request whose user has logged in. Exactly one caller gets `true`,
/// so a double-clicked Approve issues one code.
pub async fn take(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM authorization_requests
         WHERE id = $1 AND subject IS NOT NULL AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM authorization_requests WHERE expires_at <= $1").bind(now).execute(conn).await?;
    Ok(())
}
