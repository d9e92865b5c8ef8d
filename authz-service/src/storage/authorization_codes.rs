//! SQL for `authorization_codes`. Redemption is a conditional UPDATE, so of two
//! concurrent redemptions (two replicas on one PostgreSQL) exactly one wins.
//! The grant logic is in `crate::grants::authorization_code`.

use sqlx::{Any, AnyConnection, Executor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub subject: String,
    pub redirect_uri: String,
    /// 0 or 1.
    pub redirect_uri_given: i64,
    pub code_challenge: String,
    /// JSON array of canonical resource URIs.
    pub resources: String,
    pub scope: String,
    /// 0 or 1.
    pub refresh: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub redeemed_at: Option<i64>,
    pub access_jti: Option<String>,
    pub access_exp: Option<i64>,
    pub family_id: Option<String>,
}

pub async fn insert(conn: &mut AnyConnection, row: &CodeRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, client_id, subject, redirect_uri, redirect_uri_given,
             code_challenge, resources, scope, refresh, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&row.code_hash)
    .bind(&row.client_id)
    .bind(&row.subject)
    .bind(&row.redirect_uri)
    .bind(row.redirect_uri_given)
    .bind(&row.code_challenge)
    .bind(&row.resources)
    .bind(&row.scope)
    .bind(row.refresh)
    .bind(row.created_at)
    .bind(row.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    code_hash: &str,
) -> Result<Option<CodeRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT code_hash, client_id, subject, redirect_uri, redirect_uri_given, code_challenge,
                resources, scope, refresh, created_at, expires_at, redeemed_at, access_jti,
                access_exp, family_id
         FROM authorization_codes WHERE code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(executor)
    .await
}

/// Marks the code redeemed; `true` for the one caller that did it. Another
/// transaction doing the same waits for this one (PostgreSQL row lock, SQLite
/// write lock) and then sees 0 rows.
pub async fn redeem(conn: &mut AnyConnection, code_hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE authorization_codes SET redeemed_at = $2
         WHERE code_hash = $1 AND redeemed_at IS NULL AND expires_at > $2",
    )
    .bind(code_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Remembers what the redemption issued, for revocation on replay.
pub async fn record_issued(
    conn: &mut AnyConnection,
    code_hash: &str,
    access_jti: &str,
    access_exp: i64,
    family_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE authorization_codes SET access_jti = $2, access_exp = $3, family_id = $4
         WHERE code_hash = $1",
    )
    .bind(code_hash)
    .bind(access_jti)
    .bind(access_exp)
    .bind(family_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Codes are kept a while after they expire, so that a late replay is still
/// recognised as one.
pub async fn delete_expired_before(conn: &mut AnyConnection, before: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM authorization_codes WHERE expires_at <= $1").bind(before).execute(conn).await?;
    Ok(())
}
