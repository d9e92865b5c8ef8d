//! Validation of a new key's settings. An instance that is not registered is
//! `invalid_target` (RFC 8707's word for it); a scope no instance offers is
//! `invalid_scope`; anything else malformed is `invalid_request`.

use sekisho_contract::scope::{OFFLINE_ACCESS, ScopeSet};

use crate::api_keys::{ApiKeySpec, Expiry, MAX_LIFETIME_SECONDS};
use crate::error::{Error, Result};
use crate::registry::{Instance, resolve};
use crate::storage::Db;

const MAX_NAME: usize = 200;
const MAX_INSTANCES: usize = 64;

/// What a key will be stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Validated {
    pub name: String,
    pub instances: Vec<String>,
    pub scope: ScopeSet,
    pub expires_at: Option<i64>,
}

pub(super) async fn spec(db: &Db, spec: &ApiKeySpec, now: i64) -> Result<Validated> {
    let name = name(&spec.name)?;
    let expires_at = expiry(spec.expiry, now)?;
    let requested = scope(&spec.scope)?;
    let ids = instance_ids(&spec.instances)?;
    let mut instances = Vec::with_capacity(ids.len());
    for id in &ids {
        instances.push(resolve::by_id(db, id).await?);
    }
    offered(&instances, &requested)?;
    Ok(Validated { name, instances: ids, scope: requested, expires_at })
}

fn name(name: &str) -> Result<String> {
    let name = name.trim();
    let length = name.chars().count();
    if length == 0 || length > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid_request(format!(
            "`name` must be 1 to {MAX_NAME} characters without control characters"
        )));
    }
    Ok(name.to_owned())
}

/// The ids in the order given, each once.
fn instance_ids(ids: &[String]) -> Result<Vec<String>> {
    if ids.is_empty() || ids.len() > MAX_INSTANCES {
        return Err(Error::invalid_request(format!("`instances` must name 1 to {MAX_INSTANCES} instances")));
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    Ok(unique)
}

fn scope(scope: &str) -> Result<ScopeSet> {
    let parsed = ScopeSet::parse(scope).map_err(|e| Error::invalid_scope(e.to_string()))?;
    if parsed.is_empty() {
        return Err(Error::invalid_scope("`scope` is required, e.g. \"mcp:read\""));
    }
    if parsed.contains(OFFLINE_ACCESS) {
        return Err(Error::invalid_scope(format!(
            "`{OFFLINE_ACCESS}` asks for a refresh token; it is not a resource scope"
        )));
    }
    Ok(parsed)
}

/// Every scope must mean something at one of the key's instances: an MCP scope,
/// or a scope one of their policies requires.
fn offered(instances: &[Instance], requested: &ScopeSet) -> Result<()> {
    let supported: Vec<String> = instances.iter().flat_map(|i| i.policy().scopes_supported()).collect();
    match requested.iter().find(|s| !supported.iter().any(|x| x == s)) {
        Some(unknown) => {
            Err(Error::invalid_scope(format!("scope `{unknown}` is not offered by any of the key's instances")))
        }
        None => Ok(()),
    }
}

fn expiry(expiry: Expiry, now: i64) -> Result<Option<i64>> {
    match expiry {
        Expiry::Never => Ok(None),
        Expiry::After(seconds) if (1..=MAX_LIFETIME_SECONDS).contains(&seconds) => {
            Ok(Some(now.saturating_add(seconds)))
        }
        Expiry::After(_) => {
            Err(Error::invalid_request(format!("`expires_in` must be between 1 and {MAX_LIFETIME_SECONDS} seconds")))
        }
        Expiry::At(at) if at > now && at - now <= MAX_LIFETIME_SECONDS => Ok(Some(at)),
        Expiry::At(_) => Err(Error::invalid_request(format!(
            "`expires_at` must be in the future, at most {MAX_LIFETIME_SECONDS} seconds away"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("  ci bot ").unwrap(), "ci bot");
        for bad in ["", "   ", "a\nb", &"x".repeat(201)] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn instance_lists_keep_order_and_drop_repeats() {
        let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(instance_ids(&ids(&["b", "a", "b"])).unwrap(), ids(&["b", "a"]));
        assert!(instance_ids(&[]).is_err());
        assert!(instance_ids(&vec!["a".to_owned(); 65]).is_err());
    }

    #[test]
    fn scopes_must_be_present_and_resource_scopes() {
        assert_eq!(scope("mcp:read").unwrap().to_string(), "mcp:read");
        assert_eq!(scope("").unwrap_err().code(), "invalid_scope");
        assert_eq!(scope("a\"b").unwrap_err().code(), "invalid_scope");
        assert_eq!(scope("mcp:read offline_access").unwrap_err().code(), "invalid_scope");
    }

    #[test]
    fn expiry_is_in_the_future_and_bounded() {
        assert_eq!(expiry(Expiry::Never, 100).unwrap(), None);
        assert_eq!(expiry(Expiry::After(10), 100).unwrap(), Some(110));
        assert_eq!(expiry(Expiry::At(150), 100).unwrap(), Some(150));
        for bad in [
            Expiry::After(0),
            Expiry::After(-5),
            Expiry::After(MAX_LIFETIME_SECONDS + 1),
            Expiry::At(100),
            Expiry::At(99),
            Expiry::At(100 + MAX_LIFETIME_SECONDS + 1),
        ] {
            assert_eq!(expiry(bad, 100).unwrap_err().code(), "invalid_request", "{bad:?}");
        }
    }
}
