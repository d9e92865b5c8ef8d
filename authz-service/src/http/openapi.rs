//! `GET /openapi.json`: the OpenAPI 3 document of this service's HTTP API,
//! `authz-service/openapi.json`, compiled in and served byte for byte.
//!
//! It describes every route, the admin API and the filter's internal
//! endpoints included, so it is answered on the service's own listener only:
//! Envoy's public listener does not route it, like `/health`. The document
//! holds no secret; it is internal because the operations it lists are.
//! `tests/openapi.rs` keeps it and the router in step.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;

pub const PATH: &str = "/openapi.json";
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub fn routes() -> Router<App> {
    Router::new().route(PATH, get(document))
}

async fn document() -> Response {
    let mut response = DOCUMENT.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
