//! `POST /internal/v1/api-keys/verify`: the filter asks whether an API key is
//! valid, and for which instances and scopes (`sekisho_contract::api_key`
//! `VerifyRequest` → `VerifyResponse`, always 200 for a readable request).
//!
//! Internal, like the filter policy: Envoy's public listener does not route
//! it, and the service's own port must not be public. The key travels in the
//! body so that it never lands in a URL or an access log.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use sekisho_contract::api_key::VerifyRequest;
use sekisho_contract::paths;

use crate::api_keys::verify::verify;
use crate::app::App;
use crate::error::Result;
use crate::http::extract::Json;

pub fn routes() -> Router<App> {
    Router::new().route(paths::API_KEY_VERIFY, post(verify_key))
}

async fn verify_key(State(app): State<App>, Json(request): Json<VerifyRequest>) -> Result<Response> {
    let answer = verify(&app, &request.api_key).await?;
    app.metrics.api_key_verification(&answer.verdict);
    let mut response = axum::Json(answer).into_response();
    // The filter caches by `cache_seconds`; nothing in between may cache an
    // answer about a secret.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
