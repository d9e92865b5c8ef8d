//! SQL for `consents`: what a user approved for a client, per resource.

use sqlx::{Any, AnyConnection, Executor};

/// The scope `subject` approved for `client_id` at `resource`, if any.
pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    subject: &str,
    client_id: &str,
    resource: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT scope FROM consents WHERE subject = $1 AND client_id = $2 AND resource = $3")
            .bind(subject)
            .bind(client_id)
            .bind(resource)
            .fetch_optional(executor)
            .await?;
    Ok(row.map(|(scope,)| scope))
}

pub async fn put(
    conn: &mut AnyConnection,
    subject: &str,
    client_id: &str,
    resource: &str,
    scope: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consents (subject, client_id, resource, scope, granted_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (subject, client_id, resource) DO UPDATE SET scope = $4, granted_at = $5",
    )
    .bind(subject)
    .bind(client_id)
    .bind(resource)
    .bind(scope)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets every consent given to a client (when it is revoked).
pub async fn delete_for_client(conn: &mut AnyConnection, client_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM consents WHERE client_id = $1").bind(client_id).execute(conn).await?;
    Ok(())
}
