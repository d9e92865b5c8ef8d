//! `POST /admin/v1/tokens`: mint an access token for tests and local use.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;

use crate::app::App;
use crate::error::Result;
use crate::http::admin::auth::AdminActor;
use crate::http::extract::Json;
use crate::tokens::mint::{self, MintRequest};

pub fn routes() -> Router<App> {
    Router::new().route("/tokens", post(mint_token))
}

/// Shaped like an RFC 6749 §5.1 token response.
#[derive(Serialize)]
struct Minted {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

async fn mint_token(
    State(app): State<App>,
    AdminActor(actor): AdminActor,
    Json(request): Json<MintRequest>,
) -> Result<Response> {
    let issued = mint::mint(&app, &request, &actor).await?;
    let body =
        Minted { access_token: issued.token, token_type: "Bearer", expires_in: issued.expires_in, scope: issued.scope };
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
