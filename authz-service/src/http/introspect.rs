//! `POST /oauth/introspect` (RFC 7662), for confidential clients: whether a
//! token is active, and what it grants.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::app::App;
use crate::clients::authenticate::{self, Public};
use crate::error::{Error, Result};
use crate::http::token::no_store;
use crate::params::Params;
use crate::tokens::introspection::{self, Introspection};

pub fn routes() -> Router<App> {
    Router::new().route("/oauth/introspect", post(introspect))
}

async fn introspect(State(app): State<App>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let mut response = match handle(&app, &headers, body).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(),
    };
    no_store(response.headers_mut());
    response
}

async fn handle(app: &App, headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> Result<Introspection> {
    let body = body.map_err(Error::from)?;
    let params = Params::from_body(headers, &body)?;
    let client = authenticate::authenticate(app, headers, &params, Public::Refused).await?;
    app.rate_limits.check_client(&client.id).await?;
    let token = params.required("token")?;
    params.one("token_type_hint")?;
    introspection::introspect(app, &client, token).await
}
