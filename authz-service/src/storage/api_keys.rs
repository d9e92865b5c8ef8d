//! SQL for `api_keys`. Validation, auditing and the verify decision are in
//! `crate::api_keys`.
//!
//! The key hash goes in on insert and is used to find a key, but is never read
//! back out: no listing can leak it.

use sqlx::{Any, AnyConnection, Executor};

/// A key as stored, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub display_prefix: String,
    pub name: String,
    /// JSON array of instance ids.
    pub instances: String,
    pub scope: String,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub use_count: i64,
    pub rotated_from: Option<String>,
}

/// `SELECT` of every column but the hash, with `$tail` appended (a literal, so
/// the query stays a static string).
macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT id, display_prefix, name, instances, scope, created_at, created_by, ",
            "expires_at, revoked_at, last_used_at, use_count, rotated_from FROM api_keys ",
            $tail
        )
    };
}

pub async fn insert(conn: &mut AnyConnection, row: &ApiKeyRow, key_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, key_hash, display_prefix, name, instances, scope, created_at,
                               created_by, expires_at, revoked_at, last_used_at, use_count, rotated_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&row.id)
    .bind(key_hash)
    .bind(&row.display_prefix)
    .bind(&row.name)
    .bind(&row.instances)
    .bind(&row.scope)
    .bind(row.created_at)
    .bind(&row.created_by)
    .bind(row.expires_at)
    .bind(row.revoked_at)
    .bind(row.last_used_at)
    .bind(row.use_count)
    .bind(row.rotated_from.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first.
pub async fn list<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(select!("ORDER BY created_at DESC, id")).fetch_all(executor).await
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(executor: E, id: &str) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(select!("WHERE id = $1")).bind(id).fetch_optional(executor).await
}

pub async fn find_by_hash<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    key_hash: &str,
) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(select!("WHERE key_hash = $1")).bind(key_hash).fetch_optional(executor).await
}

/// Sets `revoked_at` to `at` unless the key is already revoked by then; a
/// revocation scheduled later (a rotation's grace period) is brought forward.
/// `false` when nothing changed.
pub async fn revoke(conn: &mut AnyConnection, id: &str, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $2
         WHERE id = $1 AND (revoked_at IS NULL OR revoked_at > $2)",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets `revoked_at` to `at` (now or later) only if the key has no revocation
/// yet, so that of two concurrent rotations only one goes through. `false`
/// when the key is missing or already revoked.
pub async fn schedule_revocation(conn: &mut AnyConnection, id: &str, at: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Adds `uses` to the count and moves `last_used_at` forward (never back: other
/// replicas flush their own batches in any order).
pub async fn add_usage(conn: &mut AnyConnection, id: &str, uses: i64, last_used_at: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys
         SET use_count = use_count + $2,
             last_used_at = CASE WHEN COALESCE(last_used_at, 0) < $3 THEN $3 ELSE last_used_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(uses)
    .bind(last_used_at)
    .execute(conn)
    .await?;
    Ok(())
}
