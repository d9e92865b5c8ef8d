//! The JWKS (RFC 7517) with every key a valid token may be signed with, plus the
//! next one, at `/oauth/jwks` (what the filter fetches) and `/.well-known/jwks.json`.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sekisho_contract::paths;

use crate::app::App;

/// Short enough that a rotation is seen within a minute by HTTP caches; the
/// filter refreshes on an unknown `kid` anyway.
const CACHE_CONTROL: &str = "public, max-age=60";

pub fn routes() -> Router<App> {
    Router::new().route(paths::JWKS, get(jwks)).route("/.well-known/jwks.json", get(jwks))
}

async fn jwks(State(app): State<App>) -> Response {
    let ring = app.keys.current();
    let mut response = Json(ring.jwks()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}
