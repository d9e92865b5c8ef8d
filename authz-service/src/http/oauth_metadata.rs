//! Authorization-server metadata (SPEC A1): RFC 8414 at
//! `/.well-known/oauth-authorization-server` and OpenID Connect Discovery at
//! `/.well-known/openid-configuration`, the same document where they overlap.
//!
//! `issuer` is `PUBLIC_BASE_URL` byte for byte: clients compare it as a string
//! with the `authorization_servers` of protected-resource metadata and with the
//! `iss` of authorization responses.
//!
//! Path-inserted variants (`/.well-known/oauth-authorization-server/mcp/demo`)
//! are asked for by clients that take the MCP server's URL for the issuer. Our
//! issuer has no path, so strictly (RFC 8414 §3) those URLs name issuers that
//! do not exist; we answer them with our one document anyway, its `issuer`
//! unchanged. A lenient client then finds us; a strict one sees the issuer
//! mismatch and stops, which it would have done on a 404 as well.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sekisho_contract::paths;
use sekisho_contract::scope::{MCP_SCOPES, OFFLINE_ACCESS};
use serde::Serialize;

use crate::app::App;
use crate::clients::{AuthMethod, GrantType};
use crate::pkce;

const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// Clients re-read metadata rarely; a minute keeps changes visible soon.
const CACHE_CONTROL: &str = "public, max-age=60";

#[derive(Debug, Serialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    registration_endpoint: String,
    revocation_endpoint: String,
    introspection_endpoint: String,
    jwks_uri: String,
    scopes_supported: Vec<&'static str>,
    response_types_supported: [&'static str; 1],
    response_modes_supported: [&'static str; 1],
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: [&'static str; 3],
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    introspection_endpoint_auth_methods_supported: [&'static str; 2],
    code_challenge_methods_supported: [&'static str; 1],
    authorization_response_iss_parameter_supported: bool,
    client_id_metadata_document_supported: bool,
    /// Required by OpenID Connect Discovery; only in that document.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject_types_supported: Option<[&'static str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token_signing_alg_values_supported: Option<[&'static str; 1]>,
}

pub fn routes() -> Router<App> {
    let oauth = paths::AUTHORIZATION_SERVER_METADATA;
    Router::new()
        .route(oauth, get(oauth_metadata))
        .route(&format!("{oauth}/{{*path}}"), get(oauth_metadata))
        .route(OPENID_CONFIGURATION, get(openid_configuration))
        .route(&format!("{OPENID_CONFIGURATION}/{{*path}}"), get(openid_configuration))
}

async fn oauth_metadata(State(app): State<App>) -> Response {
    cached(metadata(&app, false))
}

async fn openid_configuration(State(app): State<App>) -> Response {
    cached(metadata(&app, true))
}

fn metadata(app: &App, openid: bool) -> Metadata {
    let issuer = app.issuer();
    let endpoint = |path: &str| format!("{issuer}{path}");
    Metadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: endpoint("/oauth/authorize"),
        token_endpoint: endpoint("/oauth/token"),
        registration_endpoint: endpoint("/oauth/register"),
        revocation_endpoint: endpoint("/oauth/revoke"),
        introspection_endpoint: endpoint("/oauth/introspect"),
        jwks_uri: endpoint(paths::JWKS),
        // MCP 2026-07-28: offline_access is listed here, where clients look
        // for it, and never in protected-resource metadata.
        scopes_supported: MCP_SCOPES.into_iter().chain([OFFLINE_ACCESS]).collect(),
        response_types_supported: ["code"],
        response_modes_supported: ["query"],
        grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
        token_endpoint_auth_methods_supported: AuthMethod::SUPPORTED,
        revocation_endpoint_auth_methods_supported: AuthMethod::SUPPORTED,
        introspection_endpoint_auth_methods_supported: [
            AuthMethod::ClientSecretBasic.as_str(),
            AuthMethod::ClientSecretPost.as_str(),
        ],
        code_challenge_methods_supported: [pkce::S256],
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: true,
        subject_types_supported: openid.then_some(["public"]),
        id_token_signing_alg_values_supported: openid.then_some(["ES256"]),
    }
}

fn cached(metadata: Metadata) -> Response {
    let mut response = Json(metadata).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}
