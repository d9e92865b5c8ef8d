//! `GET /admin/v1/audit?limit=&event=`: the most recent audit events.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::audit::{self, AuditRecord};
use crate::error::{Error, Result};
use crate::http::extract::Query;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

pub fn routes() -> Router<App> {
    Router::new().route("/audit", get(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    event: Option<String>,
}

#[derive(Serialize)]
struct AuditList {
    events: Vec<AuditRecord>,
}

async fn list(State(app): State<App>, Query(params): Query<AuditParams>) -> Result<axum::Json<AuditList>> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid_request(format!("`limit` must be between 1 and {MAX_LIMIT}")));
    }
    let events = audit::list(&app.db, params.event.as_deref(), limit).await?;
    Ok(axum::Json(AuditList { events }))
}
