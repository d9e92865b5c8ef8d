//! `GET /metrics`: the service's Prometheus metrics (`crate::metrics`).
//!
//! Internal, like `/internal/*`: Envoy's public listener does not route it;
//! scrape the service's own port. It shows counts and states, never a
//! credential, but it tells an outsider more than they need.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::App;
use crate::error::Error;
use crate::metrics::CONTENT_TYPE;

pub fn routes() -> Router<App> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(app): State<App>) -> Response {
    let pool = app.db.pool();
    app.metrics.database_pool(pool.size(), pool.num_idle(), pool.options().get_max_connections());
    match app.metrics.render() {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            response
        }
        Err(e) => Error::internal(anyhow::anyhow!("cannot render the metrics: {e}")).into_response(),
    }
}
