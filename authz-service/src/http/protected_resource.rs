//! RFC 9728 protected-resource metadata (SPEC F11): how a client that got a 401
//! from an MCP instance finds out which authorization server to use and which
//! scopes exist there.
//!
//! The filter's `WWW-Authenticate` points at the per-instance document,
//! `/.well-known/oauth-protected-resource/mcp/{id}` (the well-known segment
//! inserted before the resource's path, RFC 9728 §3.1). The root document
//! describes the gateway as a whole: clients of the 2025-06-18 spec that get no
//! `resource_metadata` in the challenge, or that try the origin first, fetch
//! `/.well-known/oauth-protected-resource`; they need the same
//! `authorization_servers` to find us, and then name the instance they want in
//! the `resource` parameter of the authorize and token requests.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sekisho_contract::paths;
use sekisho_contract::scope::MCP_SCOPES;
use serde::Serialize;

use crate::app::App;
use crate::error::{Error, Result};
use crate::http::extract::Path;
use crate::registry;

/// Clients re-read metadata rarely; a minute keeps changes visible soon.
const CACHE_CONTROL: &str = "public, max-age=60";
const GATEWAY_NAME: &str = "Sekisho MCP gateway";

#[derive(Debug, Serialize)]
struct ProtectedResourceMetadata {
    resource: String,
    authorization_servers: Vec<String>,
    scopes_supported: Vec<String>,
    bearer_methods_supported: [&'static str; 1],
    resource_name: String,
}

pub fn routes() -> Router<App> {
    let root = paths::PROTECTED_RESOURCE_METADATA;
    Router::new()
        .route(root, get(gateway))
        .route(&format!("{root}/mcp/{{id}}"), get(instance))
        // A client that appended a slash to the resource URI inserts the
        // well-known segment into that; the resource is the same (see
        // `sekisho_contract::resource`), and so is the answer.
        .route(&format!("{root}/mcp/{{id}}/"), get(instance))
}

async fn gateway(State(app): State<App>) -> Response {
    cached(ProtectedResourceMetadata {
        resource: app.issuer().to_owned(),
        authorization_servers: vec![app.issuer().to_owned()],
        scopes_supported: MCP_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        bearer_methods_supported: ["header"],
        resource_name: GATEWAY_NAME.to_owned(),
    })
}

async fn instance(State(app): State<App>, Path(id): Path<String>) -> Result<Response> {
    let instance =
        registry::get(&app.db, &id).await?.ok_or_else(|| Error::not_found(format!("no MCP instance `{id}`")))?;
    Ok(cached(ProtectedResourceMetadata {
        resource: instance.resource(app.issuer()),
        authorization_servers: vec![app.issuer().to_owned()],
        // Never offline_access: it is not a resource scope.
        scopes_supported: instance.policy().scopes_supported(),
        bearer_methods_supported: ["header"],
        resource_name: instance.display_name,
    }))
}

fn cached(metadata: ProtectedResourceMetadata) -> Response {
    let mut response = Json(metadata).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}
