//! The grants of the token endpoint (SPEC A6), one small handler per grant
//! type, in the manner of Ory Fosite: `crate::http::token` authenticates the
//! client and dispatches on `grant_type`; each handler reads its parameters,
//! decides, and issues through `crate::tokens`. Adding a grant is adding a file.
//!
//! Every handler writes its changes and their audit rows in one transaction
//! and hands tokens out only after it committed.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use std::fmt;

use sekisho_contract::scope::ScopeSet;
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::audit::{Actor, AuditEvent, EventKind};
use crate::clients::Client;
use crate::error::{Error, Result};
use crate::params::Params;
use crate::registry::Instance;
use crate::targets;
use crate::tokens::access::{AccessTokenGrant, IssuedAccessToken, issue_access_token};

/// What a grant handler gets.
pub struct Context<'a> {
    pub app: &'a App,
    /// The authenticated client.
    pub client: &'a Client,
    pub params: &'a Params,
    pub actor: &'a Actor,
}

/// RFC 6749 §5.1. `Debug` shows no token.
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The access token of a decision, signed with the current key.
fn access_token(
    app: &App,
    subject: &str,
    client_id: &str,
    audience: &[String],
    scope: &ScopeSet,
    now: i64,
) -> Result<IssuedAccessToken> {
    let grant = AccessTokenGrant { subject, client_id, audience, scope, lifetime: app.config.access_token_ttl };
    issue_access_token(app.issuer(), &app.keys.current(), &grant, now)
}

/// The audience of a token from an earlier grant (a code, a refresh token):
/// the resources asked for now, each of which must have been granted (RFC 8707
/// §2.2: narrow, never widen), or, when none is asked for, all that were.
async fn narrowed_audience(app: &App, requested: &[&str], granted: &[String]) -> Result<(Vec<String>, Vec<Instance>)> {
    let asked: Vec<&str> =
        if requested.is_empty() { granted.iter().map(String::as_str).collect() } else { requested.to_vec() };
    let instances = targets::resolve_resources(app, &asked).await?;
    let audience = targets::resource_uris(app, &instances);
    if let Some(outside) = audience.iter().find(|r| !granted.contains(r)) {
        return Err(Error::invalid_target(format!(
            "`{outside}` was not granted; a token request may narrow the resources, never widen them"
        )));
    }
    Ok((audience, instances))
}

/// The `token.issued` audit row: identifiers only.
fn issued_event(
    actor: &Actor,
    grant_type: &str,
    subject: &str,
    client_id: &str,
    access: &IssuedAccessToken,
    audience: &[String],
    family: Option<&str>,
) -> AuditEvent {
    AuditEvent::success(
        EventKind::TokenIssued,
        actor,
        json!({
            "grant_type": grant_type,
            "jti": access.jti,
            "kid": access.kid,
            "aud": audience,
            "scope": access.scope,
            "exp": access.expires_at,
            "refresh_family": family,
        }),
    )
    .with_client(client_id)
    .with_subject(subject)
}
