//! From what a request names (an instance id, or an RFC 8707 `resource`) to a
//! registered instance, and whether a requested scope exists there. Every
//! failure is `invalid_target` / `invalid_scope`, as RFC 8707 and RFC 6749 say,
//! so the token and authorize endpoints can use these as they are.

use sekisho_contract::resource::instance_from_resource;
use sekisho_contract::scope::{OFFLINE_ACCESS, ScopeSet};

use crate::error::{Error, Result};
use crate::registry::{self, Instance};
use crate::storage::Db;

pub async fn by_id(db: &Db, id: &str) -> Result<Instance> {
    registry::get(db, id).await?.ok_or_else(|| Error::invalid_target(format!("no MCP instance `{id}` is registered")))
}

/// The instance a `resource` names. One trailing slash is accepted (see
/// `sekisho_contract::resource`); anything else that is not the canonical
/// resource URI of a registered instance is refused.
pub async fn by_resource(db: &Db, issuer: &str, resource: &str) -> Result<Instance> {
    let id = instance_from_resource(issuer, resource)
        .map_err(|e| Error::invalid_target(format!("resource is not an MCP instance of this server: {e}")))?;
    by_id(db, id).await
}

/// Refuses a scope the instance does not offer. `offline_access` is not a
/// resource scope (it asks for a refresh token) and never goes into an access token.
pub fn check_scope(instance: &Instance, requested: &ScopeSet) -> Result<()> {
    if requested.contains(OFFLINE_ACCESS) {
        return Err(Error::invalid_scope(format!("`{OFFLINE_ACCESS}` is not a resource scope")));
    }
    let supported = instance.policy().scopes_supported();
    if let Some(unknown) = requested.iter().find(|s| !supported.iter().any(|x| x == s)) {
        return Err(Error::invalid_scope(format!("scope `{unknown}` is not offered by instance `{}`", instance.id)));
    }
    Ok(())
}
