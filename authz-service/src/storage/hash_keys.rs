//! SQL for `hash_keys`: the key of the secret hashes, sealed. The domain side
//! is `crate::crypto::hash_key`.

use sqlx::{Any, AnyConnection, Executor};

/// The hash key in use: the first one stored.
pub async fn first<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, sealed_key FROM hash_keys ORDER BY created_at, id LIMIT 1")
        .fetch_optional(executor)
        .await
}

/// Stores a hash key unless one with this id exists (a replica starting at the
/// same moment stored the same key).
pub async fn insert_if_absent(
    conn: &mut AnyConnection,
    id: &str,
    sealed_key: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO hash_keys (id, sealed_key, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
        .bind(id)
        .bind(sealed_key)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}
