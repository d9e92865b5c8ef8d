//! SQL for `revoked_access_tokens`: access tokens revoked before their `exp`,
//! published to the filter until they expire.

use sqlx::{Any, AnyConnection, Executor};

/// Idempotent: revoking a token twice keeps the first record.
pub async fn insert(conn: &mut AnyConnection, jti: &str, exp: i64, now: i64, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO revoked_access_tokens (jti, exp, revoked_at, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(exp)
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// `(jti, exp)` of revoked tokens that have not expired, oldest first.
pub async fn live<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    now: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT jti, exp FROM revoked_access_tokens WHERE exp > $1 ORDER BY revoked_at, jti")
        .bind(now)
        .fetch_all(executor)
        .await
}

pub async fn is_revoked<'e, E: Executor<'e, Database = Any>>(executor: E, jti: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT jti FROM revoked_access_tokens WHERE jti = $1")
        .bind(jti)
        .fetch_optional(executor)
        .await?;
    Ok(row.is_some())
}

pub async fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM revoked_access_tokens WHERE exp <= $1").bind(now).execute(conn).await?;
    Ok(())
}
