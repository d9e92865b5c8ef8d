//! `POST /oauth/revoke` (RFC 7009): a client revokes one of its tokens. The
//! answer is 200 whether or not the token was known (§2.2); `token_type_hint`
//! is optional and not needed, since we recognise both kinds of token.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::app::App;
use crate::audit::Actor;
use crate::clients::authenticate::{self, Public};
use crate::error::{Error, Result};
use crate::http::client_ip::ClientIp;
use crate::http::token::no_store;
use crate::params::Params;
use crate::tokens::revocation;

pub fn routes() -> Router<App> {
    Router::new().route("/oauth/revoke", post(revoke))
}

async fn revoke(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut response = match handle(&app, &headers, body, &Actor::client(ip)).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    };
    no_store(response.headers_mut());
    response
}

async fn handle(app: &App, headers: &HeaderMap, body: Result<Bytes, BytesRejection>, actor: &Actor) -> Result<()> {
    let body = body.map_err(Error::from)?;
    let params = Params::from_body(headers, &body)?;
    let client = authenticate::authenticate(app, headers, &params, Public::Allowed).await?;
    app.rate_limits.check_client(&client.id).await?;
    let token = params.required("token")?;
    params.one("token_type_hint")?;
    revocation::revoke_presented(app, &client, token, actor).await
}
