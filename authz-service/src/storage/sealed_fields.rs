//! SQL for re-sealing encrypted columns (`crate::crypto::reencrypt`): find the
//! values not sealed under the current key, a batch at a time, and swap one
//! value for its re-sealed form only if nobody changed it meanwhile.
//!
//! Table and column names come from a fixed list in the code, never from
//! input; that is what makes formatting them into the SQL safe.

use sqlx::{Any, AnyConnection, AssertSqlSafe, Executor};

/// One encrypted column and the column that identifies its row.
#[derive(Debug, Clone, Copy)]
pub struct SealedColumn {
    pub table: &'static str,
    pub key: &'static str,
    pub column: &'static str,
}

/// Rows after `after` (by key) whose value does not start with `prefix` (the
/// current key's `v1:{id}:`), in key order: a keyset walk, so a value that
/// cannot be opened is passed over instead of being fetched again forever.
pub async fn stale_batch<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    c: SealedColumn,
    prefix: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT {key}, {column} FROM {table}
         WHERE {column} IS NOT NULL AND substr({column}, 1, {len}) <> $1 AND {key} > $2
         ORDER BY {key} LIMIT $3",
        key = c.key,
        column = c.column,
        table = c.table,
        len = prefix.len(),
    );
    sqlx::query_as(AssertSqlSafe(sql)).bind(prefix).bind(after).bind(limit).fetch_all(executor).await
}

/// How many values are still not sealed under the key with `prefix`.
pub async fn count_stale<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    c: SealedColumn,
    prefix: &str,
) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL AND substr({column}, 1, {len}) <> $1",
        table = c.table,
        column = c.column,
        len = prefix.len(),
    );
    sqlx::query_scalar(AssertSqlSafe(sql)).bind(prefix).fetch_one(executor).await
}

/// Replaces `old` by `new` in the row `key`; false if the value changed meanwhile.
pub async fn replace(
    conn: &mut AnyConnection,
    c: SealedColumn,
    key: &str,
    old: &str,
    new: &str,
) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "UPDATE {table} SET {column} = $1 WHERE {key} = $2 AND {column} = $3",
        table = c.table,
        column = c.column,
        key = c.key,
    );
    let done = sqlx::query(AssertSqlSafe(sql)).bind(new).bind(key).bind(old).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}
