//! The HTTP API, one router per area, all sharing [`App`] as state:
//!
//! - [`jwks`] and [`protected_resource`]: public discovery documents;
//! - [`filter_policy`]: what the Envoy filter fetches (internal);
//! - [`api_key_verify`]: where the filter checks an API key it has not seen (internal);
//! - [`health`]: liveness and database state; [`metrics`]: Prometheus (internal);
//! - [`openapi`]: the OpenAPI document of this API (internal);
//! - [`admin`]: the admin API, behind `SEKISHO_ADMIN_TOKEN`;
//! - the OAuth authorization server: [`oauth_metadata`] (discovery),
//!   [`register`] (RFC 7591/7592), [`authorize`] (the browser flow, HTML),
//!   [`token`], [`revoke`] (RFC 7009), [`introspect`] (RFC 7662).
//!
//! Every error, including unknown paths, wrong methods and unreadable bodies,
//! is a JSON [`Error`] — except on the authorization endpoint's pages, where a
//! browser gets an HTML page ([`html`]).

pub mod admin;
pub mod api_key_verify;
pub mod authorize;
pub mod client_ip;
pub mod extract;
pub mod filter_policy;
pub mod health;
pub mod html;
pub mod introspect;
pub mod jwks;
pub mod metrics;
pub mod oauth_metadata;
pub mod openapi;
pub mod protected_resource;
pub mod register;
pub mod revoke;
pub mod token;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request};
use tower_http::cors::{self, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::error::{Error, ErrorCode};

/// Our request bodies are small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router(app: App) -> Router {
    // Browser-based MCP clients fetch discovery documents cross-origin; they
    // are public and carry no credentials.
    let discovery_cors =
        CorsLayer::new().allow_origin(cors::Any).allow_methods([Method::GET, Method::OPTIONS]).allow_headers(cors::Any);
    let discovery = Router::new()
        .merge(jwks::routes())
        .merge(protected_resource::routes())
        .merge(oauth_metadata::routes())
        // Set before the layer, so that the layer also wraps it and answers
        // preflight `OPTIONS` (the outer default would replace it unwrapped).
        .method_not_allowed_fallback(method_not_allowed)
        .layer(discovery_cors);

    // Browser-based clients (the MCP Inspector) register and redeem codes
    // cross-origin. These endpoints take no cookies; the credentials they
    // take are explicit, so any origin may call them. Request headers are
    // mirrored: a `*` would not cover `Authorization`.
    let oauth_api_cors = CorsLayer::new()
        .allow_origin(cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers(cors::AllowHeaders::mirror_request())
        .expose_headers([axum::http::header::WWW_AUTHENTICATE]);
    let oauth_api = Router::new()
        .merge(register::routes())
        .merge(token::routes())
        .merge(revoke::routes())
        .merge(introspect::routes())
        .method_not_allowed_fallback(method_not_allowed)
        .layer(oauth_api_cors);

    let mut router = Router::new()
        .merge(discovery)
        .merge(oauth_api)
        .merge(authorize::routes())
        .merge(filter_policy::routes())
        .merge(api_key_verify::routes())
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(openapi::routes());
    if let Some(login) = &app.login {
        router = router.merge(login.routes());
    }
    if app.config.admin_token.is_some() {
        router = router.nest("/admin/v1", admin::routes(app.clone()));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // After routing (a route layer), so requests are counted by route template.
        .layer(axum::middleware::from_fn_with_state(app.metrics.clone(), crate::metrics::requests::track))
        // On every route and the fallback, so unknown paths are limited too.
        .layer(axum::middleware::from_fn_with_state(app.clone(), crate::rate_limit::layer::limit_per_ip))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Spans carry the path only: query strings may hold codes or keys.
        .layer(TraceLayer::new_for_http().make_span_with(
            |request: &Request<_>| tracing::info_span!("http", method = %request.method(), path = request.uri().path()),
        ))
        .with_state(app)
}

async fn not_found() -> Error {
    Error::not_found("no such endpoint")
}

async fn method_not_allowed() -> Error {
    Error::refused(ErrorCode::MethodNotAllowed, "method not allowed on this endpoint")
}
