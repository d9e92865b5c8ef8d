//! SQL for `instances`, the MCP instance registry. Validation and auditing are
//! in `crate::registry`.

use sqlx::{Any, AnyConnection, Executor};

use crate::storage::Db;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: String,
    pub display_name: String,
    pub auth_mode: String,
    /// JSON object, method → scope.
    pub method_scopes: String,
    /// JSON object, tool → scope.
    pub tool_scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn list<'e, E: Executor<'e, Database = Any>>(executor: E) -> Result<Vec<InstanceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, display_name, auth_mode, method_scopes, tool_scopes, created_at, updated_at
         FROM instances ORDER BY id",
    )
    .fetch_all(executor)
    .await
}

const BY_ID: &str = "SELECT id, display_name, auth_mode, method_scopes, tool_scopes, created_at, updated_at
     FROM instances WHERE id = $1";

impl InstanceRow {
    /// The columns of [`BY_ID`], by name, as `sqlx::FromRow` reads them.
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<InstanceRow> {
        Ok(InstanceRow {
            id: row.get("id")?,
            display_name: row.get("display_name")?,
            auth_mode: row.get("auth_mode")?,
            method_scopes: row.get("method_scopes")?,
            tool_scopes: row.get("tool_scopes")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
        })
    }
}

/// [`get`] outside a transaction: on SQLite without a thread hand-off (the
/// token endpoint reads an instance on every request).
pub async fn find(db: &Db, id: &str) -> Result<Option<InstanceRow>, sqlx::Error> {
    match db.read_inline(BY_ID, id, InstanceRow::from_sqlite) {
        Some(row) => Ok(row),
        None => get(db.pool(), id).await,
    }
}

pub async fn get<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    id: &str,
) -> Result<Option<InstanceRow>, sqlx::Error> {
    sqlx::query_as(BY_ID).bind(id).fetch_optional(executor).await
}

/// Inserts `row`; `false` when an instance with this id already exists.
pub async fn insert(conn: &mut AnyConnection, row: &InstanceRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO instances (id, display_name, auth_mode, method_scopes, tool_scopes, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&row.id)
    .bind(&row.display_name)
    .bind(&row.auth_mode)
    .bind(&row.method_scopes)
    .bind(&row.tool_scopes)
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Replaces the settings of an existing instance, but only if they differ, so
/// that an idempotent re-apply writes nothing. `false` when nothing was updated
/// (no such instance, or nothing changed).
pub async fn update_if_changed(conn: &mut AnyConnection, row: &InstanceRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE instances
         SET display_name = $2, auth_mode = $3, method_scopes = $4, tool_scopes = $5, updated_at = $6
         WHERE id = $1
           AND (display_name <> $2 OR auth_mode <> $3 OR method_scopes <> $4 OR tool_scopes <> $5)",
    )
    .bind(&row.id)
    .bind(&row.display_name)
    .bind(&row.auth_mode)
    .bind(&row.method_scopes)
    .bind(&row.tool_scopes)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// `false` when there was no such instance.
pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM instances WHERE id = $1").bind(id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseKind;

    /// On a migrated SQLite database the token endpoint's read of an instance
    /// runs inline and maps every column as sqlx does; a deletion committed
    /// through the pool shows at once.
    #[tokio::test]
    async fn an_instance_is_read_inline_as_sqlx_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Db::connect(&url, DatabaseKind::Sqlite).await.unwrap();
        db.migrate().await.unwrap();
        let row = InstanceRow {
            id: "docs".into(),
            display_name: "Docs".into(),
            auth_mode: "oauth".into(),
            method_scopes: "{}".into(),
            tool_scopes: r#"{"t":"mcp:admin"}"#.into(),
            created_at: 1,
            updated_at: 2,
        };
        let mut tx = db.begin().await.unwrap();
        assert!(insert(&mut tx, &row).await.unwrap());
        tx.commit().await.unwrap();

        let inline = db.read_inline(BY_ID, "docs", InstanceRow::from_sqlite).expect("read inline");
        assert_eq!(inline, get(db.pool(), "docs").await.unwrap());
        assert_eq!(inline.map(|r| (r.id, r.auth_mode, r.tool_scopes)), Some((row.id, row.auth_mode, row.tool_scopes)));

        let mut tx = db.begin().await.unwrap();
        assert!(delete(&mut tx, "docs").await.unwrap());
        tx.commit().await.unwrap();
        assert_eq!(find(&db, "docs").await.unwrap(), None);
    }
}
