//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client acts
//! on its own behalf; the token's `sub` is its `client_id`.
//!
//! Only clients an operator registered with this grant may use it (an open
//! registration endpoint must not hand out machine credentials). The scope is
//! limited to the client's registered `scope` — or, if it registered none, to
//! `SEKISHO_DEFAULT_SCOPE` — and defaults to all of it. `resource` follows
//! `crate::targets`: when omitted, the only registered instance, else
//! `invalid_target`. No refresh token (RFC 6749 §4.4.3); `offline_access` is
//! ignored.

use crate::clients::GrantType;
use crate::error::{Error, Result};
use crate::grants::{Context, TokenResponse, access_token, issued_event};
use crate::targets;
use crate::time::now_unix;

pub const GRANT_TYPE: &str = "client_credentials";

pub async fn grant(ctx: &Context<'_>) -> Result<TokenResponse> {
    let Context { app, client, params, actor } = ctx;
    if client.is_public() || !client.metadata.allows(GrantType::ClientCredentials) {
        return Err(Error::unauthorized_client(
            "this client may not use client_credentials; an operator registers such clients",
        ));
    }
    let instances = targets::resolve_resources(app, &params.all("resource")).await?;
    let registered = client.metadata.registered_scope();
    let allowed = registered.clone().unwrap_or_else(|| app.config.oauth.default_scope.clone());
    let scope = match targets::parse_scope(params.one("scope")?)? {
        Some(asked) if !asked.resource_scope.is_empty() => {
            if !asked.resource_scope.is_subset_of(&allowed) {
                return Err(Error::invalid_scope(format!("this client may ask for `{allowed}` at most")));
            }
            asked.resource_scope
        }
        _ => targets::default_scope(app, Some(&allowed), &instances)?,
    };
    targets::check_offered(&instances, &scope)?;
    let audience = targets::resource_uris(app, &instances);
    let now = now_unix();
    let access = access_token(app, &client.id, &client.id, &audience, &scope, now)?;
    let event = issued_event(actor, GRANT_TYPE, &client.id, &client.id, &access, &audience, None);
    // The token is handed out only once its audit row is committed; it
    // changes nothing else, so the row may share a transaction with others.
    app.journal.record(event).await?;
    Ok(TokenResponse {
        scope: access.scope.clone(),
        expires_in: access.expires_in,
        token_type: "Bearer",
        refresh_token: None,
        access_token: access.token,
    })
}
