//! The settings of the OAuth authorization server: default scope, refresh-token
//! lifetime and reuse grace window, the development login, and Client ID
//! Metadata Document fetching.
//!
//! The development conveniences (`SEKISHO_DEV_LOGIN`, `SEKISHO_DEV_AUTO_CONSENT`,
//! `SEKISHO_CIMD_ALLOW_LOOPBACK`) are refused outright when
//! `SEKISHO_ENV=production`, so a copied development environment cannot open a
//! production service (SPEC U4).

use sekisho_contract::scope::{OFFLINE_ACCESS, ScopeSet};

use super::{ConfigError, Environment, bad};

/// RFC 6749 §3.3: what a client gets when its request names no scope.
pub const DEFAULT_SCOPE: &str = "mcp:read mcp:write";
pub const DEFAULT_REFRESH_TOKEN_TTL: i64 = 30 * 24 * 3600;
pub const MAX_REFRESH_TOKEN_TTL: i64 = 365 * 24 * 3600;
/// A client that retries a refresh (a timeout, two tabs) within this many
/// seconds of the rotation is refused without revoking its family.
pub const DEFAULT_REFRESH_REUSE_GRACE: i64 = 10;
pub const MAX_REFRESH_REUSE_GRACE: i64 = 300;
pub const DEFAULT_CIMD_CACHE_TTL: i64 = 300;
pub const MAX_CIMD_CACHE_TTL: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct OAuthConfig {
    /// `SEKISHO_DEFAULT_SCOPE`.
    pub default_scope: ScopeSet,
    /// `SEKISHO_REFRESH_TOKEN_TTL`, seconds.
    pub refresh_token_ttl: i64,
    /// `SEKISHO_REFRESH_REUSE_GRACE_SECS`.
    pub refresh_reuse_grace: i64,
    /// `SEKISHO_DEV_LOGIN`: every login is the local user `dev-user`.
    pub dev_login: bool,
    /// `SEKISHO_DEV_AUTO_CONSENT`: consent is granted without asking.
    pub dev_auto_consent: bool,
    /// `SEKISHO_CIMD_ALLOW_LOOPBACK`: metadata documents may be fetched from
    /// loopback addresses, over plain http (tests).
    pub cimd_allow_loopback: bool,
    /// `SEKISHO_CIMD_CACHE_TTL`: how long a fetched document is used, seconds,
    /// unless its `Cache-Control: max-age` says less.
    pub cimd_cache_ttl: i64,
}

impl OAuthConfig {
    pub(super) fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
        environment: Environment,
    ) -> Result<OAuthConfig, ConfigError> {
        let default_scope = match get("SEKISHO_DEFAULT_SCOPE") {
            None => ScopeSet::parse(DEFAULT_SCOPE).map_err(|e| bad("SEKISHO_DEFAULT_SCOPE", e.to_string()))?,
            Some(v) => {
                let scope = ScopeSet::parse(&v).map_err(|e| bad("SEKISHO_DEFAULT_SCOPE", e.to_string()))?;
                if scope.is_empty() || scope.contains(OFFLINE_ACCESS) {
                    return Err(bad(
                        "SEKISHO_DEFAULT_SCOPE",
                        "must name at least one resource scope, and not offline_access",
                    ));
                }
                scope
            }
        };
        let refresh_token_ttl =
            seconds(get, "SEKISHO_REFRESH_TOKEN_TTL", DEFAULT_REFRESH_TOKEN_TTL, 60, MAX_REFRESH_TOKEN_TTL)?;
        let refresh_reuse_grace =
            seconds(get, "SEKISHO_REFRESH_REUSE_GRACE_SECS", DEFAULT_REFRESH_REUSE_GRACE, 0, MAX_REFRESH_REUSE_GRACE)?;
        let cimd_cache_ttl = seconds(get, "SEKISHO_CIMD_CACHE_TTL", DEFAULT_CIMD_CACHE_TTL, 0, MAX_CIMD_CACHE_TTL)?;
        let dev_login = development_flag(get, "SEKISHO_DEV_LOGIN", environment)?;
        let dev_auto_consent = development_flag(get, "SEKISHO_DEV_AUTO_CONSENT", environment)?;
        let cimd_allow_loopback = development_flag(get, "SEKISHO_CIMD_ALLOW_LOOPBACK", environment)?;
        Ok(OAuthConfig {
            default_scope,
            refresh_token_ttl,
            refresh_reuse_grace,
            dev_login,
            dev_auto_consent,
            cimd_allow_loopback,
            cimd_cache_ttl,
        })
    }
}

fn seconds(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => {
            v.trim().parse::<i64>().ok().filter(|s| (min..=max).contains(s)).ok_or_else(|| {
                bad(variable, format!("must be seconds between {min} and {max}, got {}", super::shown(&v)))
            })
        }
    }
}

/// `1`/`true` or `0`/`false`; `true` is refused in production.
fn development_flag(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    environment: Environment,
) -> Result<bool, ConfigError> {
    let on = match get(variable).as_deref().map(str::trim) {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => return Err(bad(variable, format!("must be 1 or 0, got {}", super::shown(other)))),
    };
    if on && environment == Environment::Production {
        return Err(bad(variable, "is a development setting and is refused when SEKISHO_ENV=production"));
    }
    Ok(on)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn oauth(vars: &[(&str, &str)], environment: Environment) -> Result<OAuthConfig, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        OAuthConfig::from_lookup(&|name| map.get(name).cloned(), environment)
    }

    #[test]
    fn defaults() {
        let c = oauth(&[], Environment::Development).unwrap();
        assert_eq!(c.default_scope.to_string(), "mcp:read mcp:write");
        assert_eq!(c.refresh_token_ttl, 30 * 24 * 3600);
        assert_eq!(c.refresh_reuse_grace, 10);
        assert!(!c.dev_login && !c.dev_auto_consent && !c.cimd_allow_loopback);
    }

    #[test]
    fn development_conveniences_are_refused_in_production() {
        for variable in ["SEKISHO_DEV_LOGIN", "SEKISHO_DEV_AUTO_CONSENT", "SEKISHO_CIMD_ALLOW_LOOPBACK"] {
            assert!(oauth(&[(variable, "1")], Environment::Development).is_ok());
            let err = oauth(&[(variable, "1")], Environment::Production).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.message.contains("production"), "{err}");
            assert!(oauth(&[(variable, "0")], Environment::Production).is_ok());
            assert!(oauth(&[(variable, "yes")], Environment::Development).is_err());
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("SEKISHO_DEFAULT_SCOPE", "offline_access"),
            ("SEKISHO_DEFAULT_SCOPE", "a\"b"),
            ("SEKISHO_REFRESH_TOKEN_TTL", "30d"),
            ("SEKISHO_REFRESH_TOKEN_TTL", "1"),
            ("SEKISHO_REFRESH_REUSE_GRACE_SECS", "-1"),
            ("SEKISHO_CIMD_CACHE_TTL", "999999"),
        ] {
            let err = oauth(&[(variable, value)], Environment::Development).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
        }
    }
}
