//! `POST /oauth/token` (SPEC A6): reads the body (form or JSON), authenticates
//! the client, and dispatches on `grant_type` to `crate::grants`. Every answer
//! — tokens or RFC 6749 §5.2 error — is JSON with `Cache-Control: no-store`
//! and `Pragma: no-cache`; every refusal is audited as `token.refused`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::app::App;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::clients::authenticate::{self, Public};
use crate::error::{Error, ErrorCode, Result};
use crate::grants::{Context, TokenResponse, authorization_code, client_credentials, refresh_token};
use crate::http::client_ip::ClientIp;
use crate::params::Params;

pub fn routes() -> Router<App> {
    Router::new().route("/oauth/token", post(token))
}

/// What was learnt about a request before it failed, for its audit row.
#[derive(Default)]
struct Seen {
    grant_type: Option<String>,
    client_id: Option<String>,
}

async fn token(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let actor = Actor::client(ip);
    let mut seen = Seen::default();
    let mut response = match exchange(&app, &headers, body, &actor, &mut seen).await {
        Ok(tokens) => {
            app.metrics.token_issued(seen.grant_type.as_deref().unwrap_or_default());
            axum::Json(tokens).into_response()
        }
        Err(error) => {
            app.metrics.token_refused(error.code());
            audit_refusal(&app, &actor, &seen, &error).await;
            error.into_response()
        }
    };
    no_store(response.headers_mut());
    response
}

async fn exchange(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    actor: &Actor,
    seen: &mut Seen,
) -> Result<TokenResponse> {
    let body = body.map_err(Error::from)?;
    let params = Params::from_body(headers, &body)?;
    let grant_type = params.required("grant_type")?;
    seen.grant_type = Some(grant_type.to_owned());
    let client = authenticate::authenticate(app, headers, &params, Public::Allowed).await?;
    seen.client_id = Some(client.id.clone());
    app.rate_limits.check_client(&client.id).await?;
    let ctx = Context { app, client: &client, params: &params, actor };
    match grant_type {
        authorization_code::GRANT_TYPE => authorization_code::exchange(&ctx).await,
        refresh_token::GRANT_TYPE => refresh_token::refresh(&ctx).await,
        client_credentials::GRANT_TYPE => client_credentials::grant(&ctx).await,
        other => Err(Error::refused(ErrorCode::UnsupportedGrantType, format!("grant_type `{other}` is not supported"))),
    }
}

/// `token.refused`, in its own transaction: nothing else changed. Our own
/// faults are logged by the error itself, not audited as refusals.
async fn audit_refusal(app: &App, actor: &Actor, seen: &Seen, error: &Error) {
    if !matches!(error, Error::Refused { .. }) {
        return;
    }
    let mut event = AuditEvent::failure(
        EventKind::TokenRefused,
        actor,
        error.code(),
        json!({
            "grant_type": seen.grant_type,
            "error_description": error.description(),
        }),
    );
    if let Some(client_id) = &seen.client_id {
        event = event.with_client(client_id);
    }
    if let Err(e) = app.journal.record(event).await {
        tracing::warn!(error = %e, "could not audit a refused token request");
    }
}

/// RFC 6749 §5.1: token responses must not be cached by anyone.
pub fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
