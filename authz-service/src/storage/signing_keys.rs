//! SQL for `signing_keys`. The lifecycle (`next → current → previous →
//! retired`) and its rules are in `crate::keys::stored`.
//!
//! Every status change is conditional on the status the caller saw, and reports
//! whether it happened: a concurrent rotation by another replica or the CLI then
//! shows up as "0 rows" instead of as a corrupted key set.

use sqlx::{Any, AnyConnection, Executor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub status: String,
    /// Sealed with `crate::crypto::field`; `None` once retired.
    pub private_key: Option<String>,
    pub public_jwk: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

/// Keys that are not retired: at most one each of next, current and previous.
pub async fn live<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kid, status, private_key, public_jwk, created_at, activated_at, retired_at
         FROM signing_keys WHERE status <> 'retired' ORDER BY created_at, kid",
    )
    .fetch_all(executor)
    .await
}

/// Every key ever used: next, current, previous, then the retired ones, newest first.
pub async fn all<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kid, status, private_key, public_jwk, created_at, activated_at, retired_at
         FROM signing_keys
         ORDER BY CASE status WHEN 'next' THEN 0 WHEN 'current' THEN 1 WHEN 'previous' THEN 2 ELSE 3 END,
                  retired_at DESC, created_at DESC, kid",
    )
    .fetch_all(executor)
    .await
}

pub async fn insert(conn: &mut AnyConnection, row: &SigningKeyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO signing_keys (kid, status, private_key, public_jwk, created_at, activated_at, retired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.kid)
    .bind(&row.status)
    .bind(row.private_key.as_deref())
    .bind(&row.public_jwk)
    .bind(row.created_at)
    .bind(row.activated_at)
    .bind(row.retired_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// previous → retired. The private key is erased: a retired key never signs again.
pub async fn retire_previous(conn: &mut AnyConnection, kid: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE signing_keys SET status = 'retired', retired_at = $2, private_key = NULL
         WHERE kid = $1 AND status = 'previous'",
    )
    .bind(kid)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// current → previous: it stops signing but stays published.
pub async fn demote_current(conn: &mut AnyConnection, kid: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE signing_keys SET status = 'previous' WHERE kid = $1 AND status = 'current'")
        .bind(kid)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// next → current: it starts signing.
pub async fn promote_next(conn: &mut AnyConnection, kid: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE signing_keys SET status = 'current', activated_at = $2 WHERE kid = $1 AND status = 'next'")
            .bind(kid)
            .bind(now)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
