//! The database: SQLite (embedded default) or PostgreSQL, chosen by
//! `DATABASE_URL` at run time, behind one `sqlx::AnyPool`.
//!
//! Each kind of record has its own small module with its SQL; nothing outside
//! `storage` writes SQL. Queries are written once for both backends, which
//! fixes a few rules: `$n` placeholders (SQLite accepts them too), only TEXT
//! and 64-bit INTEGER columns (Any has no JSON, timestamp or bool mapping that
//! works on both), times as unix seconds, JSON as text.
//!
//! Changes that must be audited take a `&mut AnyConnection` inside a
//! transaction from [`Db::begin`], so the audit row commits with the change.

pub mod api_keys;
pub mod audit_events;
pub mod authorization_codes;
pub mod authorization_requests;
pub mod consents;
pub mod hash_keys;
pub mod instances;
pub mod oauth_clients;
pub mod oidc_logins;
pub mod refresh_tokens;
pub mod revoked_access_tokens;
pub mod sealed_fields;
pub mod signing_keys;
pub mod sqlite_inline;
pub mod users;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::config::DatabaseKind;
use crate::storage::sqlite_inline::InlineReader;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// How long a request waits for a pooled connection before we answer 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    kind: DatabaseKind,
    /// SQLite has one writer at a time. Writers of this process queue here
    /// instead of in SQLite's busy handler, which polls with sleeps of up to
    /// 100 ms: under concurrent token issuance that made the tail latency
    /// and a third of the throughput. `None` on PostgreSQL.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// Point reads without sqlx's thread hand-off; `None` on PostgreSQL and
    /// for an in-memory SQLite database.
    inline: Option<Arc<InlineReader>>,
}

/// A write transaction from [`Db::begin`]; used like the `sqlx::Transaction`
/// it wraps (`&mut tx` is a connection), ended by [`WriteTx::commit`] or drop.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    /// This process's SQLite write turn, released once the transaction ends.
    _turn: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

/// A pooled connection from [`Db::write_alone`], used like `&mut AnyConnection`.
pub struct WriteConn {
    conn: PoolConnection<Any>,
    /// This process's SQLite write turn, released with the connection.
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Deref for WriteConn {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

impl Db {
    /// Connects without touching the schema (see [`Db::migrate`]).
    pub async fn connect(url: &str, kind: DatabaseKind) -> Result<Db, sqlx::Error> {
        install_default_drivers();
        let mut options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        if kind == DatabaseKind::Sqlite {
            create_sqlite_parent_dir(url)?;
            // Per-connection settings. The Any driver builds SQLite options from
            // the URL alone, which cannot carry pragmas, so they are set here.
            options = options.max_connections(8).after_connect(|conn, _meta| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA busy_timeout = 5000",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA mmap_size = 268435456",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        if kind == DatabaseKind::Sqlite {
            // WAL lets readers run beside the single writer. It is a property of
            // the database file, so setting it once per start is enough.
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let sqlite_writer = (kind == DatabaseKind::Sqlite).then(|| Arc::new(Mutex::new(())));
        let inline = (kind == DatabaseKind::Sqlite).then(|| InlineReader::for_url(url).map(Arc::new)).flatten();
        Ok(Db { pool, kind, sqlite_writer, inline })
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        match self.kind {
            DatabaseKind::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await,
            DatabaseKind::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await,
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// A write transaction. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first can fail
    /// with SQLITE_BUSY when it later tries to write, without waiting.
    pub async fn begin(&self) -> Result<WriteTx, sqlx::Error> {
        match &self.sqlite_writer {
            Some(writer) => {
                let turn = write_turn(writer).await?;
                let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
                Ok(WriteTx { tx, _turn: Some(turn) })
            }
            None => Ok(WriteTx { tx: self.pool.begin().await?, _turn: None }),
        }
    }

    /// A connection for one write statement of its own. A statement is atomic
    /// by itself, so this saves the `BEGIN` and `COMMIT` round trips of
    /// [`Db::begin`] (the audit journal writes each batch as one `INSERT`).
    /// On SQLite it holds this process's write turn, like [`Db::begin`].
    pub async fn write_alone(&self) -> Result<WriteConn, sqlx::Error> {
        let turn = match &self.sqlite_writer {
            Some(writer) => Some(write_turn(writer).await?),
            None => None,
        };
        Ok(WriteConn { conn: self.pool.acquire().await?, _turn: turn })
    }

    /// The row `sql` selects by `key` (bound to `$1`), read on this thread
    /// where the database allows it (see [`sqlite_inline`]), else through the
    /// pool by the caller: `None` means "read it through sqlx".
    pub fn read_inline<T>(
        &self,
        sql: &str,
        key: &str,
        map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        self.inline.as_ref()?.row(sql, key, map)
    }

    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// Waits for connections in use to be returned, then closes them (on
    /// SQLite this checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// This process's SQLite write turn, waited for no longer than a pool
/// acquire: a writer that never ends must not make every other request wait forever.
async fn write_turn(writer: &Arc<Mutex<()>>) -> Result<OwnedMutexGuard<()>, sqlx::Error> {
    tokio::time::timeout(ACQUIRE_TIMEOUT, Arc::clone(writer).lock_owned()).await.map_err(|_| sqlx::Error::PoolTimedOut)
}

/// Whether `e` is a unique-constraint violation (a concurrent writer won).
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|d| d.is_unique_violation())
}

/// Whether `e` is contention rather than a fault: SQLite busy/locked after the
/// busy timeout, PostgreSQL serialization failure, deadlock or overload.
pub fn is_contention(e: &sqlx::Error) -> bool {
    let Some(code) = e.as_database_error().and_then(|d| d.code()) else {
        return false;
    };
    matches!(&*code, "5" | "6" | "261" | "262" | "517" | "40001" | "40P01" | "53300" | "57P01" | "57P03")
}

/// Whether `e` says the database cannot serve us now rather than that a query
/// was wrong: a PostgreSQL connection failure (class 08), shutdown or
/// failover (57P01–57P03), exhausted resources (class 53), or a database
/// that is not there (3D000, e.g. dropped under a running service).
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    let Some(code) = e.as_database_error().and_then(|d| d.code()) else {
        return false;
    };
    code.starts_with("08") || code.starts_with("53") || matches!(&*code, "3D000" | "57P01" | "57P02" | "57P03")
}

/// Whether `e` says the database could not be reached at all (rather than
/// that it refused or failed one statement): no pooled connection in time,
/// the pool closed, the connection lost, or the server going away.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    use sqlx::Error as E;
    matches!(e, E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed) || is_unavailable(e)
}

/// `mode=rwc` creates the database file but not its directory.
/// The database file of a SQLite `url`; `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<&Path> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| Path::new(path))
}

fn create_sqlite_parent_dir(url: &str) -> Result<(), sqlx::Error> {
    let Some(path) = sqlite_path(url) else {
        return Ok(());
    };
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(sqlx::Error::Io),
        _ => Ok(()),
    }
}
