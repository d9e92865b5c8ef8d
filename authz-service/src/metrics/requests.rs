//! The middleware that counts and times every HTTP request by route template.
//!
//! Installed with `Router::layer`, so it runs after routing and sees the
//! [`MatchedPath`] (`/oauth/register/{client_id}`, not the client id itself).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::{Metrics, UNMATCHED_ROUTE};

pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.http_request(route.as_deref().unwrap_or(UNMATCHED_ROUTE), &method, response.status(), started.elapsed());
    response
}
