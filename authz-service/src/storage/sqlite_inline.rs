//! Point reads on SQLite on the calling thread.
//!
//! sqlx runs each SQLite connection on a thread of its own: a query is sent
//! there and its rows are sent back, and under load each of those hand-offs
//! is a context switch. A token request reads two rows by primary key (the
//! client and the instance), which SQLite answers from its mapped pages in
//! microseconds; profiled under load, the hand-offs and the thread switches
//! cost the token endpoint far more than the reads (docs/benchmarks.md).
//!
//! So those reads run here, on the caller's thread, through read-only
//! connections of their own. The database is in WAL mode: a reader never
//! waits for the writer, and each statement sees every transaction committed
//! before it began, by this process or another one (the CLI revoking a
//! client takes effect at the next request, as before). Nothing waits here:
//! a read that cannot be done at once (the file is busy, the schema is not
//! there yet) answers `None`, and the caller reads through sqlx instead.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, Row};

/// Idle connections kept; more may be open at a moment of high concurrency.
const IDLE: usize = 8;

pub struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    /// A reader of the database file behind a SQLite `url`; `None` for an
    /// in-memory database, which no other connection can open.
    pub fn for_url(url: &str) -> Option<InlineReader> {
        let path = super::sqlite_path(url)?;
        Some(InlineReader { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) })
    }

    /// The row `sql` selects with `key` bound to `$1`, mapped by `map`:
    /// `Some(None)` when there is none, `None` when it could not be read here.
    pub fn row<T>(&self, sql: &str, key: &str, map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>) -> Option<Option<T>> {
        let conn = self.take()?;
        let result = read(&conn, sql, key, map);
        self.give_back(conn);
        result
    }

    fn take(&self) -> Option<Connection> {
        if let Some(conn) = self.idle.lock().ok()?.pop() {
            return Some(conn);
        }
        open(&self.path).ok()
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < IDLE
        {
            idle.push(conn);
        }
    }
}

fn read<T>(
    conn: &Connection,
    sql: &str,
    key: &str,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Option<Option<T>> {
    let mut statement = conn.prepare_cached(sql).ok()?;
    let mut rows = statement.query([key]).ok()?;
    match rows.next() {
        Ok(Some(row)) => map(row).ok().map(Some),
        Ok(None) => Some(None),
        Err(_) => None,
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    // Same page mapping as the sqlx connections; no busy wait (see above).
    conn.pragma_update(None, "mmap_size", 268_435_456)?;
    conn.busy_timeout(std::time::Duration::ZERO)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('a', 1);",
        )
        .unwrap();
        (dir, format!("sqlite://{}?mode=rwc", path.display()))
    }

    const SQL: &str = "SELECT v FROM t WHERE k = $1";

    #[test]
    fn reads_a_row_by_key_and_sees_later_commits_of_other_connections() {
        let (_dir, url) = database();
        let reader = InlineReader::for_url(&url).unwrap();
        assert_eq!(reader.row(SQL, "a", |r| r.get::<_, i64>(0)), Some(Some(1)));
        assert_eq!(reader.row(SQL, "b", |r| r.get::<_, i64>(0)), Some(None));
        // A writer elsewhere (the CLI, another replica's sqlx pool): the next read sees it.
        let writer = Connection::open(&reader.path).unwrap();
        writer.execute("UPDATE t SET v = 2 WHERE k = 'a'", []).unwrap();
        writer.execute("INSERT INTO t VALUES ('b', 3)", []).unwrap();
        assert_eq!(reader.row(SQL, "a", |r| r.get::<_, i64>(0)), Some(Some(2)));
        assert_eq!(reader.row(SQL, "b", |r| r.get::<_, i64>(0)), Some(Some(3)));
    }

    #[test]
    fn what_cannot_be_read_here_is_left_to_the_caller() {
        let (_dir, url) = database();
        let reader = InlineReader::for_url(&url).unwrap();
        // No such table (a database not migrated yet), and a column of the wrong type.
        assert_eq!(reader.row("SELECT v FROM nowhere WHERE k = $1", "a", |r| r.get::<_, i64>(0)), None);
        assert_eq!(reader.row("SELECT k FROM t WHERE k = $1", "a", |r| r.get::<_, i64>(0)), None);
        // The connection went back to the pool after each refusal, and still works.
        assert_eq!(reader.row(SQL, "a", |r| r.get::<_, i64>(0)), Some(Some(1)));
        assert!(reader.idle.lock().unwrap().len() <= IDLE);
    }

    #[test]
    fn an_in_memory_database_has_no_inline_reader() {
        assert!(InlineReader::for_url("sqlite::memory:").is_none());
        assert!(InlineReader::for_url("sqlite://:memory:").is_none());
    }

    #[test]
    fn a_missing_file_is_not_created_by_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.db");
        let reader = InlineReader::for_url(&format!("sqlite://{}", path.display())).unwrap();
        assert_eq!(reader.row(SQL, "a", |r| r.get::<_, i64>(0)), None);
        assert!(!path.exists());
    }
}
