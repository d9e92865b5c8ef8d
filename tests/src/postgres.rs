//! A PostgreSQL database of its own for one stack, created on the test server
//! and dropped when the stack is gone, as the service's own tests do
//! (`authz-service/tests/common`).
//!
//! The server is `SEKISHO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`), used only to create and drop
//! databases, through `psql`. Without either, the stack fails to start and
//! says what is missing.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::random;

const ENV_POSTGRES_URL: &str = "SEKISHO_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// `DATABASE_URL` for the service.
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> Result<TestDatabase> {
        let admin_url = std::env::var(ENV_POSTGRES_URL).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let suffix: String = random::bytes::<6>()?.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("sekisho_e2e_{suffix}");
        let url = with_database(&admin_url, &name)?;
        psql(&admin_url, &format!("CREATE DATABASE {name}"))?;
        Ok(TestDatabase { admin_url, name, url })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // FORCE: a replica that was killed may leave a connection behind.
        if let Err(error) = psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("sekisho-e2e: cannot drop database {}: {error:#}", self.name);
        }
    }
}

/// `admin_url` with its database name replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> Result<String> {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let Some((server, _database)) = base.rsplit_once('/').filter(|(server, _)| server.contains("://")) else {
        bail!("${ENV_POSTGRES_URL} is not a postgres://host/database URL: {admin_url}");
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

fn psql(url: &str, sql: &str) -> Result<()> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .context("cannot run psql (Debian: postgresql-client), which creates the stack's database")?;
    if !out.status.success() {
        bail!("psql `{sql}` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/test", "x").unwrap(), "postgres://u@h:5432/x");
        assert_eq!(
            with_database("postgresql://h/test?sslmode=disable", "x").unwrap(),
            "postgresql://h/x?sslmode=disable"
        );
        assert!(with_database("nonsense", "x").is_err());
    }
}
