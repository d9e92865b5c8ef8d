//! The middleware that applies the per-IP limit of every request, before any
//! handler runs (so a refused request costs no database work).
//!
//! A request with no known peer address (the router driven in process) is
//! not limited per IP: there is no address to count it under.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::http::client_ip;
use crate::rate_limit::Limit;

pub async fn limit_per_ip(State(app): State<App>, request: Request, next: Next) -> Response {
    let limit = Limit::for_request(request.method(), request.uri().path());
    if let Some(ip) = client_ip::of_request(request.extensions(), request.headers(), &app.config.trusted_proxies)
        && let Err(refused) = app.rate_limits.check_ip(limit, ip).await
    {
        return refused.into_response();
    }
    next.run(request).await
}
