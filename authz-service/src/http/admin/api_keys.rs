//! `/admin/v1/api-keys`: create, list, show, revoke and rotate API keys.
//!
//! The plaintext key is in the response to create and rotate only, once, sent
//! with `Cache-Control: no-store`; no other response carries it or its hash.
//!
//! - `POST /api-keys` `{name, instances, scope, expires_in? | expires_at?}` → 201
//! - `GET /api-keys`, `GET /api-keys/{id}`
//! - `DELETE /api-keys/{id}`: revoke now → 200 with the key's record
//! - `POST /api-keys/{id}/rotate` `{grace_seconds?}` (body optional) → 201 with
//!   the new key; the old one is revoked after `grace_seconds` (default 0, at
//!   most 7 days), so clients can switch over without an outage.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::api_keys::{self, ApiKeyInfo, ApiKeySpec, CreatedApiKey, Expiry};
use crate::app::App;
use crate::error::{Error, Result};
use crate::http::admin::auth::AdminActor;
use crate::http::extract::{Body, Json, Path};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api-keys", get(list).post(create))
        .route("/api-keys/{id}", get(show).delete(revoke))
        .route("/api-keys/{id}/rotate", post(rotate))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    instances: Vec<String>,
    /// Space-separated, e.g. `"mcp:read"`.
    scope: String,
    /// Seconds from now.
    #[serde(default)]
    expires_in: Option<i64>,
    /// Unix seconds.
    #[serde(default)]
    expires_at: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    grace_seconds: i64,
}

#[derive(Serialize)]
struct KeyList {
    api_keys: Vec<ApiKeyInfo>,
}

/// A new key: its record and, this once, the key itself.
#[derive(Serialize)]
struct NewKey {
    api_key: String,
    #[serde(flatten)]
    info: ApiKeyInfo,
    /// After a rotation: the replaced key, with its `revoked_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<ApiKeyInfo>,
}

async fn list(State(app): State<App>) -> Result<axum::Json<KeyList>> {
    let api_keys = api_keys::list(&app.db).await?;
    Ok(axum::Json(KeyList { api_keys }))
}

async fn show(State(app): State<App>, Path(id): Path<String>) -> Result<axum::Json<ApiKeyInfo>> {
    Ok(axum::Json(api_keys::get(&app.db, &id).await?))
}

async fn create(
    State(app): State<App>,
    AdminActor(actor): AdminActor,
    Json(body): Json<CreateBody>,
) -> Result<Response> {
    let expiry = match (body.expires_in, body.expires_at) {
        (None, None) => Expiry::Never,
        (Some(seconds), None) => Expiry::After(seconds),
        (None, Some(at)) => Expiry::At(at),
        (Some(_), Some(_)) => {
            return Err(Error::invalid_request("give at most one of `expires_in` and `expires_at`"));
        }
    };
    let spec = ApiKeySpec { name: body.name, instances: body.instances, scope: body.scope, expiry };
    let created = api_keys::create(&app, &spec, &actor).await?;
    Ok(new_key(created, None))
}

async fn revoke(
    State(app): State<App>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<axum::Json<ApiKeyInfo>> {
    Ok(axum::Json(api_keys::revoke(&app.db, &id, &actor).await?))
}

async fn rotate(
    State(app): State<App>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response> {
    // Read by hand so that a bodiless POST works as well as JSON.
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::invalid_request(format!("invalid rotation request: {e}")))?
    };
    let rotated = api_keys::rotate(&app, &id, body.grace_seconds, &actor).await?;
    Ok(new_key(rotated.new, Some(rotated.old)))
}

fn new_key(created: CreatedApiKey, previous: Option<ApiKeyInfo>) -> Response {
    let location = HeaderValue::from_str(&format!("/admin/v1/api-keys/{}", created.info.id)).ok();
    let body = NewKey { api_key: created.api_key, info: created.info, previous };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    // The key is shown once: no cache may keep a copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    response
}
