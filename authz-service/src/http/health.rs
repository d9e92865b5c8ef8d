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
}

pub fn routes() -> Router<App> {
    Router::new().route("/health", get(health))
}

async fn health(State(app): State<App>) -> (StatusCode, Json<Health>) {
    let database_ok = matches!(
        tokio::time::timeout(DATABASE_TIMEOUT, app.db.ping()).await,
        Ok(Ok(()))
    );
    if database_ok {
        (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database: "ok",
            }),
        )
    } else {
        tracing::warn!("health check: the database does not answer");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable",
                database: "error",
            }),
        )
    }
}
