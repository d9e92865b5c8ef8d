//! Minting an access token by hand, for tests and local use (`POST
//! /admin/v1/tokens`, `sekisho-authz token mint`). It issues exactly what the
//! token endpoint would for the same decision, and audits it as `token.minted`
//! (without the token).

use sekisho_contract::scope::ScopeSet;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::error::{Error, Result};
use crate::registry::resolve;
use crate::time::now_unix;
use crate::tokens::access::{AccessTokenGrant, IssuedAccessToken, issue_access_token};

/// Client id (and default subject) of minted tokens when none is given.
pub const DEFAULT_CLIENT_ID: &str = "sekisho-admin";
const MAX_IDENTIFIER: usize = 255;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintRequest {
    /// An instance id; or give `resource`.
    #[serde(default)]
    pub instance: Option<String>,
    /// A resource URI (RFC 8707); or give `instance`.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    /// Defaults to the client id.
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    /// Seconds; defaults to, and may not exceed, `SEKISHO_ACCESS_TOKEN_TTL`.
    #[serde(default)]
    pub ttl: Option<i64>,
}

pub async fn mint(app: &App, request: &MintRequest, actor: &Actor) -> Result<IssuedAccessToken> {
    let instance = match (request.instance.as_deref(), request.resource.as_deref()) {
        (Some(id), None) => resolve::by_id(&app.db, id).await?,
        (None, Some(resource)) => resolve::by_resource(&app.db, app.issuer(), resource).await?,
        _ => {
            return Err(Error::invalid_request("give exactly one of `instance` and `resource`"));
        }
    };
    let scope = ScopeSet::parse(request.scope.as_deref().unwrap_or_default())
        .map_err(|e| Error::invalid_scope(e.to_string()))?;
    if scope.is_empty() {
        return Err(Error::invalid_scope("`scope` is required"));
    }
    resolve::check_scope(&instance, &scope)?;
    let client_id = identifier("client_id", request.client_id.as_deref().unwrap_or(DEFAULT_CLIENT_ID))?;
    let subject = identifier("sub", request.sub.as_deref().unwrap_or(client_id))?;
    let max_ttl = app.config.access_token_ttl;
    let lifetime = request.ttl.unwrap_or(max_ttl);
    // Never longer than configured: key rotation relies on no token outliving
    // SEKISHO_ACCESS_TOKEN_TTL.
    if !(1..=max_ttl).contains(&lifetime) {
        return Err(Error::invalid_request(format!("`ttl` must be between 1 and {max_ttl} seconds")));
    }

    let audience = [instance.resource(app.issuer())];
    let grant = AccessTokenGrant { subject, client_id, audience: &audience, scope: &scope, lifetime };
    let issued = issue_access_token(app.issuer(), &app.keys.current(), &grant, now_unix())?;

    let details = json!({
        "instance": instance.id,
        "aud": audience,
        "scope": issued.scope,
        "jti": issued.jti,
        "kid": issued.kid,
        "exp": issued.expires_at,
    });
    let event =
        AuditEvent::success(EventKind::TokenMinted, actor, details).with_client(client_id).with_subject(subject);
    // The token is handed out only once its audit row is committed.
    let mut tx = app.db.begin().await?;
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(issued)
}

/// `sub` and `client_id` travel to upstream servers in headers: visible ASCII only.
fn identifier<'a>(field: &str, value: &'a str) -> Result<&'a str> {
    if value.is_empty() || value.len() > MAX_IDENTIFIER || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid_request(format!(
            "`{field}` must be 1 to {MAX_IDENTIFIER} visible ASCII characters"
        )));
    }
    Ok(value)
}
