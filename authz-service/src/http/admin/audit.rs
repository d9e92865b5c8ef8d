//! `GET /admin/v1/audit`: the audit log, newest first, filtered by
//! `since`, `until` (unix seconds, RFC 3339, or a duration ago such as `1h`),
//! `client_id`, `subject`, `event`, `outcome` (`success`|`failure`), paged
//! with `limit` and `before` (the `next_before` of the previous page).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::audit::{self, AuditFilter, AuditRecord};
use crate::error::{Error, Result};
use crate::http::extract::Query;
use crate::time::now_unix;

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
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Serialize)]
struct AuditList {
    events: Vec<AuditRecord>,
    /// The `before` of the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_before: Option<i64>,
}

async fn list(State(app): State<App>, Query(params): Query<AuditParams>) -> Result<axum::Json<AuditList>> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid_request(format!("`limit` must be between 1 and {MAX_LIMIT}")));
    }
    let now = now_unix();
    let time = |name: &str, value: Option<String>| {
        value
            .map(|v| {
                audit::parse_time(&v, now).ok_or_else(|| {
                    Error::invalid_request(format!(
                        "`{name}` must be unix seconds, an RFC 3339 time or a duration ago (e.g. 1h)"
                    ))
                })
            })
            .transpose()
    };
    let filter = AuditFilter {
        since: time("since", params.since)?,
        until: time("until", params.until)?,
        client_id: params.client_id,
        subject: params.subject,
        event: params.event,
        outcome: params.outcome.map(|o| o.parse()).transpose().map_err(Error::invalid_request)?,
        before: params.before,
        limit,
    };
    let events = audit::query(&app.db, &filter).await?;
    let full_page = i64::try_from(events.len()).is_ok_and(|n| n == limit);
    let next_before = events.last().filter(|_| full_page).map(|e| e.id);
    Ok(axum::Json(AuditList { events, next_before }))
}
