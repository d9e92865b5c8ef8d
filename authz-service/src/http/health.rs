//! `GET /health`: whether the service can do its work. 503 when the database
//! does not answer, so a load balancer stops sending traffic here.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;

use crate::app::App;

const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Serialize)]
struct Health {
    status: &'static str,
    database: &'static str,
    /// The upstream identity provider and its circuit breaker, when one is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<serde_json::Value>,
}

pub fn routes() -> Router<App> {
    Router::new().route("/health", get(health))
}

async fn health(State(app): State<App>) -> (StatusCode, Json<Health>) {
    let database_ok = matches!(tokio::time::timeout(DATABASE_TIMEOUT, app.db.ping()).await, Ok(Ok(())));
    let provider = app.login.as_ref().and_then(|l| l.health());
    if database_ok {
        // A provider that is down degrades logins only: tokens, refresh,
        // client credentials and API keys still work, so this stays 200.
        let degraded = provider.as_ref().is_some_and(|p| p.get("breaker").and_then(|b| b.as_str()) != Some("closed"));
        (StatusCode::OK, Json(Health { status: if degraded { "degraded" } else { "ok" }, database: "ok", provider }))
    } else {
        tracing::warn!("health check: the database does not answer");
        (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: "unavailable", database: "error", provider }))
    }
}
