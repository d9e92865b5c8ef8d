//! The policy document the Envoy filter fetches: the issuer, per instance its
//! auth mode and scope overrides, and the access tokens revoked before their
//! expiry (`sekisho_contract::policy::FilterPolicy`). Internal: Envoy's public
//! listener does not route this path.

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
use crate::time::now_unix;
use crate::tokens::revocation;

pub fn routes() -> Router<App> {
    Router::new().route(paths::FILTER_POLICY, get(filter_policy))
}

async fn filter_policy(State(app): State<App>) -> Result<Response> {
    let instances = registry::list(&app.db).await?;
    let policy = FilterPolicy {
        issuer: app.issuer().to_owned(),
        instances: instances.iter().map(registry::Instance::policy).collect(),
        // RFC 7009 revocations, replayed codes, reused refresh tokens, revoked
        // clients; expired entries are left out.
        revoked: revocation::live(&app.db, now_unix()).await?,
    };
    let mut response = Json(policy).into_response();
    // The filter polls; an intermediary must not serve it a stale registry.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}
