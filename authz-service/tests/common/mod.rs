//! Test harness: every storage-touching test runs once on SQLite (a temporary
//! directory) and once on PostgreSQL (a fresh database, dropped afterwards),
//! against the real router in process.
//!
//! PostgreSQL is `SEKISHO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, used only to create and drop the
//! per-test databases). If it is unreachable the tests fail; they skip it only
//! when `SEKISHO_SKIP_POSTGRES=1` is set explicitly.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod scan;

use std::collections::HashMap;
use std::future::Future;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sekisho_authz::audit::Actor;
use sekisho_authz::crypto::random;
use sekisho_authz::{App, Config};
use serde_json::{Value, json};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tempfile::TempDir;
use tower::ServiceExt;

pub const ISSUER: &str = "http://127.0.0.1:8080";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database (and data directory) of one test on one backend.
pub struct TestEnv {
    pub backend: Backend,
    pub dir: TempDir,
    pub database_url: String,
    pub master_key: String,
}

impl TestEnv {
    /// The environment a service (or CLI) of this test runs with.
    pub fn vars(&self) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        vars.insert("PUBLIC_BASE_URL".into(), ISSUER.into());
        vars.insert("SEKISHO_DATA_DIR".into(), self.dir.path().display().to_string());
        vars.insert("DATABASE_URL".into(), self.database_url.clone());
        vars.insert("SEKISHO_MASTER_KEY".into(), self.master_key.clone());
        vars.insert("SEKISHO_ADMIN_TOKEN".into(), ADMIN_TOKEN.into());
        vars.insert("SEKISHO_KEY_RELOAD_SECS".into(), "1".into());
        vars
    }

    /// The configuration of [`vars`](Self::vars) with `changes` applied (an
    /// empty value unsets a variable).
    pub fn config_with(&self, changes: &[(&str, &str)]) -> Config {
        let mut vars = self.vars();
        for (name, value) in changes {
            vars.insert((*name).to_owned(), (*value).to_owned());
        }
        Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration is valid")
    }

    pub async fn open(&self) -> TestApp {
        self.open_with(&[]).await
    }

    pub async fn open_with(&self, changes: &[(&str, &str)]) -> TestApp {
        let app = App::open(self.config_with(changes), &Actor::system()).await.expect("service opens");
        let router = sekisho_authz::http::router(app.clone());
        TestApp { app, router }
    }
}

/// Runs `test` on SQLite, then on PostgreSQL.
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(TestEnv) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_on(Backend::Sqlite, &test).await;
    if std::env::var("SEKISHO_SKIP_POSTGRES").as_deref() == Ok("1") {
        eprintln!("SEKISHO_SKIP_POSTGRES=1: not running on PostgreSQL");
    } else {
        run_on(Backend::Postgres, &test).await;
    }
}

pub async fn run_on<F, Fut>(backend: Backend, test: &F)
where
    F: Fn(TestEnv) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    scan::capture_logs();
    let mut dir = tempfile::tempdir().expect("temporary directory");
    // Removed below, once the audit table in it has been dumped for the secret scan.
    dir.disable_cleanup(true);
    let dir_path = dir.path().to_path_buf();
    let master_key = STANDARD.encode(random::bytes::<32>().expect("randomness"));
    scan::register("master_key", &master_key);
    scan::register("admin_token", ADMIN_TOKEN);
    let (database_url, postgres) = match backend {
        Backend::Sqlite => (format!("sqlite://{}/sekisho.db?mode=rwc", dir.path().display()), None),
        Backend::Postgres => {
            let database = PostgresDatabase::create().await;
            (database.url.clone(), Some(database))
        }
    };
    let env = TestEnv { backend, dir, database_url: database_url.clone(), master_key };
    // In its own task, so that a failing test still gets its database dropped.
    let outcome = tokio::spawn(test(env)).await;
    scan::dump_audit(&database_url, &format!("{backend:?}-{}", dir_path.display().to_string().replace('/', "_"))).await;
    let _ = std::fs::remove_dir_all(&dir_path);
    if let Some(database) = postgres {
        database.drop_database().await;
    }
    if let Err(e) = outcome {
        eprintln!("test failed on {backend:?}");
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("test task on {backend:?} did not finish: {e}"),
        }
    }
}

/// A database of its own on the test PostgreSQL server.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create() -> PostgresDatabase {
        sqlx::any::install_default_drivers();
        let admin_url = std::env::var("SEKISHO_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let suffix: String = random::bytes::<6>().expect("randomness").iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("sekisho_test_{suffix}");
        let mut admin = AnyConnection::connect(&admin_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin_url} is unreachable ({e}); set SEKISHO_SKIP_POSTGRES=1 to skip it explicitly")
        });
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        PostgresDatabase { admin_url, name, url }
    }

    async fn drop_database(self) {
        if let Ok(mut admin) = AnyConnection::connect(&self.admin_url).await {
            // FORCE: pools of the finished test may still hold connections.
            let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
                .execute(&mut admin)
                .await;
            let _ = admin.close().await;
        }
    }
}

/// The opened service and its router.
pub struct TestApp {
    pub app: App,
    pub router: Router,
}

/// A response, with its body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts an RFC 6749-style JSON error.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.body["error"], code, "{self:?}");
        assert!(self.header("content-type").starts_with("application/json"), "{self:?}");
    }
}

impl TestApp {
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{status}: body is not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        scan::register_json(&body);
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).expect("request")).await
    }

    /// An admin API call with the right token and a JSON body.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request =
            Request::builder().method(method).uri(path).header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"));
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).expect("request")).await
    }

    pub async fn create_instance(&self, body: Value) -> Reply {
        let reply = self.admin(Method::POST, "/admin/v1/instances", Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        reply
    }

    /// Mints through the admin API and returns the token.
    pub async fn mint(&self, instance: &str, scope: &str) -> String {
        let reply =
            self.admin(Method::POST, "/admin/v1/tokens", Some(json!({ "instance": instance, "scope": scope }))).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        reply.body["access_token"].as_str().expect("access_token").to_owned()
    }

    pub async fn jwks(&self) -> sekisho_contract::jwk::Jwks {
        let reply = self.get("/oauth/jwks").await;
        assert_eq!(reply.status, StatusCode::OK);
        serde_json::from_value(reply.body).expect("a JWKS")
    }
}

/// The kids of a JWKS, in order.
pub fn kids(jwks: &sekisho_contract::jwk::Jwks) -> Vec<String> {
    jwks.keys.iter().map(|k| k.kid.clone().expect("kid")).collect()
}

/// Verifies `token` against `jwks` as the filter does; returns its claims and kid.
pub fn verify(
    token: &str,
    jwks: &sekisho_contract::jwk::Jwks,
) -> Result<(sekisho_contract::claims::AccessTokenClaims, String), String> {
    use sekisho_contract::jws::{self, ACCESS_TOKEN_TYP, DEFAULT_MAX_TOKEN_BYTES};
    let parsed = jws::parse(token, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).map_err(|e| e.to_string())?;
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(parsed.kid.as_str()))
        .ok_or_else(|| format!("kid {} is not in the JWKS", parsed.kid))?;
    let key = jwk.verifying_key().map_err(|e| e.to_string())?;
    parsed.verify_with(&key).map_err(|e| e.to_string())?;
    let claims = parsed.claims().map_err(|e| e.to_string())?;
    Ok((claims, parsed.kid))
}
