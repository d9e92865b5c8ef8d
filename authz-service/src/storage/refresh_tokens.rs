//! SQL for `refresh_families` and `refresh_tokens`. Rotation is a conditional
//! UPDATE, so two concurrent rotations of one token (two replicas) produce
//! exactly one successor. The grant logic is in `crate::grants::refresh_token`.

use sqlx::{Any, AnyConnection, Executor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FamilyRow {
    pub id: String,
    pub client_id: String,
    pub subject: String,
    /// JSON array of canonical resource URIs.
    pub resources: String,
    pub scope: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub token_hash: String,
    pub family_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
}

pub async fn insert_family(conn: &mut AnyConnection, row: &FamilyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_families (id, client_id, subject, resources, scope, created_at, revoked_at, revoked_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.id)
    .bind(&row.client_id)
    .bind(&row.subject)
    .bind(&row.resources)
    .bind(&row.scope)
    .bind(row.created_at)
    .bind(row.revoked_at)
    .bind(row.revoked_reason.as_deref())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_token(conn: &mut AnyConnection, row: &TokenRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at, rotated_at, access_jti, access_exp)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.token_hash)
    .bind(&row.family_id)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(row.rotated_at)
    .bind(row.access_jti.as_deref())
    .bind(row.access_exp)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_token<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    token_hash: &str,
) -> Result<Option<TokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT token_hash, family_id, created_at, expires_at, rotated_at, access_jti, access_exp
         FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await
}

pub async fn get_family<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<Option<FamilyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, client_id, subject, resources, scope, created_at, revoked_at, revoked_reason
         FROM refresh_families WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(executor)
    .await
}

/// Marks the token spent; `true` for the one caller that did it.
pub async fn rotate(conn: &mut AnyConnection, token_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL")
        .bind(token_hash)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// `false` if the family was revoked already.
pub async fn revoke_family(conn: &mut AnyConnection, id: &str, now: i64, reason: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE refresh_families SET revoked_at = $2, revoked_reason = $3
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Live families of a client, for revoking the client.
pub async fn live_families_of_client<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    client_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM refresh_families WHERE client_id = $1 AND revoked_at IS NULL ORDER BY id")
            .bind(client_id)
            .fetch_all(executor)
            .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// `(jti, exp)` of the access tokens issued with the family's refresh tokens
/// that have not expired yet.
pub async fn live_access_tokens<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    family_id: &str,
    now: i64,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT access_jti, access_exp FROM refresh_tokens
         WHERE family_id = $1 AND access_jti IS NOT NULL AND access_exp > $2
         ORDER BY created_at",
    )
    .bind(family_id)
    .bind(now)
    .fetch_all(executor)
    .await
}

/// Expired tokens can be neither used nor meaningfully reused.
pub async fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= $1").bind(now).execute(conn).await?;
    Ok(())
}
