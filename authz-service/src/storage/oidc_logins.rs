//! SQL for `oidc_logins`: logins in flight at the upstream provider, keyed by
//! the keyed hash of our `state`. The flow is in `crate::login::oidc`.

use sqlx::AnyConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OidcLoginRow {
    pub state_hash: String,
    pub request_id: String,
    /// Sealed JSON: the nonce and the PKCE verifier.
    pub secrets: String,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut AnyConnection, row: &OidcLoginRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oidc_logins (state_hash, request_id, secrets, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&row.state_hash)
    .bind(&row.request_id)
    .bind(&row.secrets)
    .bind(row.created_at)
    .bind(row.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes the login `state_hash` (single use): `None` if unknown, expired or
/// already taken.
pub async fn take(conn: &mut AnyConnection, state_hash: &str, now: i64) -> Result<Option<OidcLoginRow>, sqlx::Error> {
    let row: Option<OidcLoginRow> = sqlx::query_as(
        "SELECT state_hash, request_id, secrets, created_at, expires_at FROM oidc_logins
         WHERE state_hash = $1 AND expires_at > $2",
    )
    .bind(state_hash)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let deleted =
        sqlx::query("DELETE FROM oidc_logins WHERE state_hash = $1").bind(state_hash).execute(&mut *conn).await?;
    Ok((deleted.rows_affected() == 1).then_some(row))
}

pub async fn delete_expired(conn: &mut AnyConnection, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oidc_logins WHERE expires_at <= $1").bind(now).execute(conn).await?;
    Ok(())
}
