//! Authentication of the admin API: a bearer token compared in constant time
//! with `SEKISHO_ADMIN_TOKEN`, and the [`AdminActor`] recorded in audit rows.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use crate::app::App;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::crypto::compare::secrets_equal;
use crate::error::Error;

const REALM: &str = "sekisho-admin";

pub async fn require_admin_token(State(app): State<App>, request: Request, next: Next) -> Result<Response, Error> {
    let Some(expected) = app.config.admin_token.as_ref() else {
        // Not reachable: the router is mounted only with a token. Fail closed anyway.
        return Err(Error::Unauthorized { realm: REALM, credential_sent: false });
    };
    if !request.headers().contains_key(header::AUTHORIZATION) {
        return Err(Error::Unauthorized { realm: REALM, credential_sent: false });
    }
    match bearer_token(request.headers()) {
        Some(token) if secrets_equal(token.as_bytes(), expected.expose().as_bytes()) => Ok(next.run(request).await),
        _ => {
            tracing::warn!(path = request.uri().path(), "admin API: refused a request with a wrong bearer token");
            let ip =
                request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip().to_string());
            // The full path: this router is nested under /admin/v1, which `uri()` no longer shows.
            let path = request.extensions().get::<OriginalUri>().map_or_else(|| request.uri().path(), |o| o.path());
            let details = json!({ "method": request.method().as_str(), "path": path });
            audit_refusal(&app, ip, details).await;
            Err(Error::Unauthorized { realm: REALM, credential_sent: true })
        }
    }
}

/// A wrong admin token is an authentication failure worth an audit row (SPEC
/// S4); a missing one is just a caller that has not authenticated yet.
async fn audit_refusal(app: &App, ip: Option<String>, details: serde_json::Value) {
    let event = AuditEvent::failure(EventKind::AdminRefused, &Actor::anonymous(ip), "invalid_token", details);
    if let Err(e) = app.journal.record(event).await {
        tracing::warn!(error = %e, "could not audit a refused admin request");
    }
}

/// The token of `Authorization: Bearer <token>` (scheme case-insensitive, RFC 6750 §2.1).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The admin API as the actor of an audit event, with the peer address.
pub struct AdminActor(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for AdminActor {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| peer.ip().to_string());
        Ok(AdminActor(Actor::admin_api(ip)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic abc")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&headers("Bearer")), None);
    }
}
