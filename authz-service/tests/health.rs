//! `/health` and the service when its PostgreSQL database goes away under it
//! (the database is dropped with its connections, as a failover or an
//! operator would): health turns 503 so a load balancer stops sending
//! traffic, requests that need the database are 503 `temporarily_unavailable`
//! with `Retry-After` — never a 500 — and what lives in memory (JWKS, metrics)
//! keeps answering. SQLite has no such outage (an open file outlives its
//! name); `discovery.rs` covers a closed pool on both backends.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use common::{Backend, run_on};
use oauth::{get, post_form, serve};
use reqwest::StatusCode;
use sekisho_authz::audit::Actor;
use sekisho_authz::clients::metadata::{Registrar, RegistrationRequest};
use sekisho_authz::clients::registration;
use serde_json::json;
use sqlx::{AnyConnection, AssertSqlSafe, Connection};

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Drops the test's database, ending every connection the service holds.
async fn drop_database(database_url: &str) {
    let admin_url = std::env::var("SEKISHO_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
    let name = database_url.rsplit('/').next().expect("a database name");
    let mut admin = AnyConnection::connect(&admin_url).await.expect("PostgreSQL answers");
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut admin).await.expect("drop");
    let _ = admin.close().await;
}

#[tokio::test]
async fn when_postgresql_goes_away_health_is_503_and_requests_are_503_not_500() {
    run_on(Backend::Postgres, &|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let request: RegistrationRequest = serde_json::from_value(
            json!({ "client_name": "batch", "grant_types": ["client_credentials"], "scope": "mcp:read" }),
        )
        .unwrap();
        let machine = registration::register(&t.app, request, Registrar::Operator, &Actor::cli()).await.unwrap();
        let secret = machine.client_secret.clone().unwrap();
        let server = serve(&t.app).await;
        let grant = || {
            post_form(
                &server,
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                Some((&machine.client_id, &secret)),
            )
        };
        assert_eq!(grant().await.status, StatusCode::OK);
        let health = get(&server, "/health", None).await;
        assert_eq!((health.status, health.json()), (StatusCode::OK, json!({ "status": "ok", "database": "ok" })));

        drop_database(&env.database_url).await;

        let health = get(&server, "/health", None).await;
        assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE, "{health:?}");
        assert_eq!(health.json(), json!({ "status": "unavailable", "database": "error" }));
        let refused = grant().await;
        refused.assert_error(503, "temporarily_unavailable");
        assert!(refused.header("retry-after").parse::<u64>().is_ok_and(|s| s > 0), "{refused:?}");
        let policy = get(&server, "/internal/v1/filter-policy", None).await;
        policy.assert_error(503, "temporarily_unavailable");

        // In memory: still served.
        assert_eq!(get(&server, "/oauth/jwks", None).await.status, StatusCode::OK);
        let metrics = get(&server, "/metrics", None).await;
        assert_eq!(metrics.status, StatusCode::OK);
        let unavailable = r#"sekisho_authz_token_refusals_total{error="temporarily_unavailable"} 1"#;
        assert!(metrics.text.lines().any(|l| l == unavailable), "{}", metrics.text);
    })
    .await;
}
