//! Dynamic Client Registration (SPEC A3): RFC 7591 `POST /oauth/register`,
//! and RFC 7592 `GET|PUT|DELETE /oauth/register/{client_id}` with the
//! registration access token as a bearer token.
//!
//! The body is JSON. Unreadable JSON is `invalid_request`; JSON that is not
//! client metadata is `invalid_client_metadata`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::app::App;
use crate::audit::Actor;
use crate::clients::metadata::{Registrar, RegistrationRequest};
use crate::clients::registration::{self, ClientInformation};
use crate::error::{Error, ErrorCode, Result};
use crate::http::client_ip::ClientIp;
use crate::http::extract::Path;
use crate::http::token::no_store;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/oauth/register", post(register))
        .route("/oauth/register/{client_id}", axum::routing::get(read).put(update).delete(delete))
}

async fn register(State(app): State<App>, ClientIp(ip): ClientIp, body: Result<Bytes, BytesRejection>) -> Response {
    let registered = async {
        let request = registration_request(body)?;
        registration::register(&app, request, Registrar::Dynamic, &Actor::anonymous(ip)).await
    }
    .await;
    app.metrics.client_registration(registered.is_ok());
    answer(StatusCode::CREATED, registered)
}

async fn read(State(app): State<App>, headers: HeaderMap, Path(client_id): Path<String>) -> Response {
    answer(StatusCode::OK, registration::read(&app, &client_id, bearer(&headers)).await)
}

async fn update(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let updated = async {
        let request = registration_request(body)?;
        registration::update(&app, &client_id, bearer(&headers), request, &Actor::client(ip)).await
    }
    .await;
    answer(StatusCode::OK, updated)
}

async fn delete(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let mut response = match registration::delete(&app, &client_id, bearer(&headers), &Actor::client(ip)).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    };
    no_store(response.headers_mut());
    response
}

fn registration_request(body: Result<Bytes, BytesRejection>) -> Result<RegistrationRequest> {
    let body = body.map_err(Error::from)?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|_| Error::invalid_request("the body is not valid JSON"))?;
    if !value.is_object() {
        return Err(Error::invalid_request("the body must be a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|e| Error::refused(ErrorCode::InvalidClientMetadata, format!("the body is not client metadata: {e}")))
}

fn answer(status: StatusCode, result: Result<ClientInformation>) -> Response {
    let mut response = match result {
        Ok(information) => (status, axum::Json(information)).into_response(),
        Err(error) => error.into_response(),
    };
    no_store(response.headers_mut());
    response
}

/// The registration access token of `Authorization: Bearer …`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
