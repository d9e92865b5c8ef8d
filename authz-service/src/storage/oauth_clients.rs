//! SQL for `oauth_clients`, the clients registered by RFC 7591 or by an
//! operator. Validation and auditing are in `crate::clients`.

use sqlx::{Any, AnyConnection, Executor};

use crate::storage::Db;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub client_id: String,
    /// JSON, `crate::clients::metadata::ClientMetadata`.
    pub metadata: String,
    pub secret_hash: Option<String>,
    pub registration_token_hash: Option<String>,
    /// `dcr` or `cli`.
    pub registered_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub revoked_at: Option<i64>,
}

const BY_ID: &str = "SELECT client_id, metadata, secret_hash, registration_token_hash, registered_by, created_at, updated_at, revoked_at
     FROM oauth_clients WHERE client_id = $1";

impl ClientRow {
    /// The columns of [`BY_ID`], by name, as `sqlx::FromRow` reads them.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<ClientRow> {
        Ok(ClientRow {
            client_id: row.get("client_id")?,
            metadata: row.get("metadata")?,
            secret_hash: row.get("secret_hash")?,
            registration_token_hash: row.get("registration_token_hash")?,
            registered_by: row.get("registered_by")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            revoked_at: row.get("revoked_at")?,
        })
    }
}

/// [`get`] outside a transaction: on SQLite without a thread hand-off (the
/// token endpoint reads a client on every request).
pub async fn find(db: &Db, client_id: &str) -> Result<Option<ClientRow>, sqlx::Error> {
    match db.read_inline(BY_ID, client_id, ClientRow::from_sqlite) {
        Some(row) => Ok(row),
        None => get(db.pool(), client_id).await,
    }
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    client_id: &str,
) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as(BY_ID).bind(client_id).fetch_optional(executor).await
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<Vec<ClientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT client_id, metadata, secret_hash, registration_token_hash, registered_by, created_at, updated_at, revoked_at
         FROM oauth_clients ORDER BY created_at, client_id",
    )
    .fetch_all(executor)
    .await
}

pub async fn insert(conn: &mut AnyConnection, row: &ClientRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_clients (client_id, metadata, secret_hash, registration_token_hash, registered_by, created_at, updated_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&row.client_id)
    .bind(&row.metadata)
    .bind(row.secret_hash.as_deref())
    .bind(row.registration_token_hash.as_deref())
    .bind(&row.registered_by)
    .bind(row.created_at)
    .bind(row.updated_at)
    .bind(row.revoked_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the metadata of a live client; `false` if there is none.
pub async fn update_metadata(
    conn: &mut AnyConnection,
    client_id: &str,
    metadata: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE oauth_clients SET metadata = $2, updated_at = $3
         WHERE client_id = $1 AND revoked_at IS NULL",
    )
    .bind(client_id)
    .bind(metadata)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes a live client; `false` if there is none (or it was revoked already).
pub async fn revoke(conn: &mut AnyConnection, client_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE oauth_clients SET revoked_at = $2, updated_at = $2
         WHERE client_id = $1 AND revoked_at IS NULL",
    )
    .bind(client_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseKind;

    /// On a migrated SQLite database the token endpoint's read of a client
    /// runs inline, maps every column as sqlx does, and sees a revocation
    /// committed through the pool at once.
    #[tokio::test]
    async fn a_client_is_read_inline_as_sqlx_reads_it_and_a_revocation_shows_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url, DatabaseKind::Sqlite).await.unwrap();
        db.migrate().await.unwrap();
        let row = ClientRow {
            client_id: "c1".into(),
            metadata: r#"{"client_name":"x"}"#.into(),
            secret_hash: Some("h".into()),
            registration_token_hash: None,
            registered_by: "cli".into(),
            created_at: 10,
            updated_at: 11,
            revoked_at: None,
        };
        let mut tx = db.begin().await.unwrap();
        insert(&mut tx, &row).await.unwrap();
        tx.commit().await.unwrap();

        let inline = db.read_inline(BY_ID, "c1", ClientRow::from_sqlite).expect("read inline");
        let through_sqlx = get(db.pool(), "c1").await.unwrap();
        assert_eq!(format!("{inline:?}"), format!("{through_sqlx:?}"));
        assert_eq!(db.read_inline(BY_ID, "nobody", ClientRow::from_sqlite).map(|r| r.is_none()), Some(true));

        let mut tx = db.begin().await.unwrap();
        assert!(revoke(&mut tx, "c1", 12).await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(find(&db, "c1").await.unwrap().and_then(|r| r.revoked_at), Some(12));
    }
}
