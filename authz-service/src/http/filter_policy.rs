//! The policy document the Envoy filter fetches: the issuer and, per instance,
//! its auth mode and scope overrides (`sekisho_contract::policy::FilterPolicy`).
//! Internal: Envoy's public listener does not route this path.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sekisho_contract::paths;
use sekisho_contract::policy::FilterPolicy;

use crate::app::App;
use crate::error::Result;
use crate::registry;

pub fn routes() -> Router<App> {
    Router::new().route(paths::FILTER_POLICY, get(filter_policy))
}

async fn filter_policy(State(app): State<App>) -> Result<Response> {
    let instances = registry::list(&app.db).await?;
    let policy = FilterPolicy {
        issuer: app.issuer().to_owned(),
        instances: instances.iter().map(registry::Instance::policy).collect(),
        // Filled once access tokens can be revoked (token revocation, code replay).
        revoked: Vec::new(),
    };
    let mut response = Json(policy).into_response();
    // The filter polls; an intermediary must not serve it a stale registry.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
