//! SQL for `users`: people who logged in through the upstream provider. Email
//! and profile arrive sealed (`crate::crypto::field`); the flow is in
//! `crate::login::oidc`.

use sqlx::{Any, AnyConnection, Executor};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub subject: String,
    pub issuer: String,
    pub upstream_subject: String,
    pub email_sealed: Option<String>,
    pub profile_sealed: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_login_at: i64,
}

/// Creates the user, or updates PII and login time of an existing one from
/// the same issuer. `false` when the subject belongs to a user of another
/// issuer: that row is left alone (a second provider must not take over
/// someone's identity because its `sub` happens to be equal).
pub async fn upsert(conn: &mut AnyConnection, row: &UserRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO users (subject, issuer, upstream_subject, email_sealed, profile_sealed, created_at, updated_at, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (subject) DO UPDATE SET
            upstream_subject = excluded.upstream_subject,
            email_sealed = excluded.email_sealed,
            profile_sealed = excluded.profile_sealed,
            updated_at = excluded.updated_at,
            last_login_at = excluded.last_login_at
         WHERE users.issuer = excluded.issuer",
    )
    .bind(&row.subject)
    .bind(&row.issuer)
    .bind(&row.upstream_subject)
    .bind(row.email_sealed.as_deref())
    .bind(row.profile_sealed.as_deref())
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.last_login_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    subject: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subject, issuer, upstream_subject, email_sealed, profile_sealed, created_at, updated_at, last_login_at
         FROM users WHERE subject = $1",
    )
    .bind(subject)
    .fetch_optional(executor)
    .await
}

/// Every user, most recent login first, at most `limit`.
pub async fn list<'e, E: Executor<'e, Database = Any>>(executor: E, limit: i64) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT subject, issuer, upstream_subject, email_sealed, profile_sealed, created_at, updated_at, last_login_at
         FROM users ORDER BY last_login_at DESC, subject LIMIT $1",
    )
    .bind(limit)
    .fetch_all(executor)
    .await
}
