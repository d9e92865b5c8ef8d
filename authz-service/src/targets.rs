//! What a token is for: the MCP instances (RFC 8707 resource indicators) and
//! the scopes, as the authorization endpoint and every grant decide them.
//!
//! Rules:
//! - `resource` may repeat; each must be the resource URI of a registered
//!   instance that takes OAuth tokens (one trailing slash tolerated, see
//!   `sekisho_contract::resource`), else `invalid_target`. Tokens carry the
//!   canonical URI.
//! - When a request names no resource (RFC 8707 allows a default), the only
//!   registered instance is the default; with several there is none, and the
//!   request is refused with `invalid_target`.
//! - `offline_access` is not a resource scope (MCP 2026-07-28): it is split
//!   off here, asks for a refresh token, and never reaches an access token.
//! - When a request names no scope (RFC 6749 §3.3), the client's registered
//!   scope, else `SEKISHO_DEFAULT_SCOPE`, limited to what the instances offer.

use sekisho_contract::policy::AuthMode;
use sekisho_contract::scope::{OFFLINE_ACCESS, ScopeSet};

use crate::app::App;
use crate::error::{Error, Result};
use crate::registry::resolve;
use crate::registry::{self, Instance};

/// At most this many `resource` parameters in one request.
const MAX_RESOURCES: usize = 16;

/// The instances `requested` names, or the default instance.
pub async fn resolve_resources(app: &App, requested: &[&str]) -> Result<Vec<Instance>> {
    if requested.is_empty() {
        let mut all = registry::list(&app.db).await?;
        return match all.len() {
            1 => {
                let only = all.remove(0);
                check_takes_tokens(&only)?;
                Ok(vec![only])
            }
            0 => Err(Error::invalid_target("no MCP instance is registered")),
            _ => Err(Error::invalid_target("`resource` is required: name the MCP server's resource URI")),
        };
    }
    if requested.len() > MAX_RESOURCES {
        return Err(Error::invalid_target(format!("at most {MAX_RESOURCES} resources in one request")));
    }
    let mut instances: Vec<Instance> = Vec::new();
    for resource in requested {
        let instance = resolve::by_resource(&app.db, app.issuer(), resource).await?;
        check_takes_tokens(&instance)?;
        if !instances.iter().any(|i| i.id == instance.id) {
            instances.push(instance);
        }
    }
    Ok(instances)
}

/// Canonical resource URIs of `instances`, in order.
pub fn resource_uris(app: &App, instances: &[Instance]) -> Vec<String> {
    instances.iter().map(|i| i.resource(app.issuer())).collect()
}

fn check_takes_tokens(instance: &Instance) -> Result<()> {
    if instance.auth_mode.accepts_jwt() {
        return Ok(());
    }
    let why = match instance.auth_mode {
        AuthMode::None => "needs no credential",
        _ => "accepts API keys only",
    };
    Err(Error::invalid_target(format!("MCP instance `{}` {why}; it takes no OAuth tokens", instance.id)))
}

/// A `scope` parameter, split into resource scopes and `offline_access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedScope {
    pub resource_scope: ScopeSet,
    pub offline_access: bool,
}

/// `None` when the request names no scope.
pub fn parse_scope(raw: Option<&str>) -> Result<Option<RequestedScope>> {
    let Some(raw) = raw else { return Ok(None) };
    let scope = ScopeSet::parse(raw).map_err(|e| Error::invalid_scope(e.to_string()))?;
    if scope.is_empty() {
        return Ok(None);
    }
    Ok(Some(RequestedScope {
        offline_access: scope.contains(OFFLINE_ACCESS),
        resource_scope: scope.without(OFFLINE_ACCESS),
    }))
}

/// The scope of a request that names none: `registered` (the client's), else
/// the configured default, keeping what every instance offers.
pub fn default_scope(app: &App, registered: Option<&ScopeSet>, instances: &[Instance]) -> Result<ScopeSet> {
    let base = registered
        .map(|s| s.without(OFFLINE_ACCESS))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| app.config.oauth.default_scope.clone());
    let offered = ScopeSet::from_iter(
        base.iter().filter(|s| instances.iter().all(|i| i.policy().scopes_supported().iter().any(|x| x == s))),
    );
    if offered.is_empty() {
        return Err(Error::invalid_scope("no default scope applies to these resources; name a scope"));
    }
    Ok(offered)
}

/// Refuses a scope some instance does not offer.
pub fn check_offered(instances: &[Instance], scope: &ScopeSet) -> Result<()> {
    instances.iter().try_for_each(|i| resolve::check_scope(i, scope))
}

/// `scope` with `offline_access` added when `offline` (the granted scope of an
/// authorization that yields a refresh token on request).
pub fn with_offline_access(scope: &ScopeSet, offline: bool) -> ScopeSet {
    if offline { ScopeSet::from_iter(scope.iter().chain([OFFLINE_ACCESS])) } else { scope.clone() }
}
