//! The upstream provider's settings, read and validated with the rest of the
//! configuration (`crate::config`).
//!
//! - Auth0 preset: `AUTH0_DOMAIN` (`tenant.eu.auth0.com`; the issuer is
//!   `https://{domain}/`), `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`.
//! - Any OpenID provider: `SEKISHO_OIDC_ISSUER` (exactly as the provider's
//!   discovery document spells `issuer`), with `SEKISHO_OIDC_CLIENT_ID` /
//!   `SEKISHO_OIDC_CLIENT_SECRET` (or the `AUTH0_*` pair).
//! - `SEKISHO_OIDC_SCOPE` (default `openid profile email`),
//!   `SEKISHO_BREAKER_FAILURES` (default 5), `SEKISHO_BREAKER_COOLDOWN_SECS`
//!   (default 30).
//!
//! An `http://` issuer is accepted only on a loopback address and not in
//! production (tests run a provider on loopback).

use std::fmt;
use std::time::Duration;

use url::{Host, Url};

use crate::config::{ConfigError, Environment};
use crate::login::oidc::breaker::{BreakerSettings, DEFAULT_COOLDOWN, DEFAULT_FAILURES};

pub const DEFAULT_SCOPE: &str = "openid profile email";

/// The client secret at the provider. `Debug` never prints it.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(..)")
    }
}

#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// `auth0` (from `AUTH0_DOMAIN`) or `oidc`: for logs and the audit log.
    pub provider: &'static str,
    /// Byte-exact; the discovery document and every ID token must carry it.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scope: String,
    pub breaker: BreakerSettings,
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

impl OidcSettings {
    /// `None` when no upstream provider is configured.
    pub fn from_lookup(
        get: &dyn Fn(&str) -> Option<String>,
        environment: Environment,
    ) -> Result<Option<OidcSettings>, ConfigError> {
        let (provider, issuer, issuer_var) = match (get("AUTH0_DOMAIN"), get("SEKISHO_OIDC_ISSUER")) {
            (Some(_), Some(_)) => {
                return Err(bad("SEKISHO_OIDC_ISSUER", "set either AUTH0_DOMAIN or SEKISHO_OIDC_ISSUER, not both"));
            }
            (Some(domain), None) => {
                let domain = domain.trim();
                let plain =
                    !domain.is_empty() && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
                if !plain {
                    return Err(bad(
                        "AUTH0_DOMAIN",
                        "must be a host name such as `tenant.eu.auth0.com` (no scheme, no path)",
                    ));
                }
                ("auth0", format!("https://{domain}/"), "AUTH0_DOMAIN")
            }
            (None, Some(issuer)) => ("oidc", issuer.trim().to_owned(), "SEKISHO_OIDC_ISSUER"),
            (None, None) => {
                for variable in
                    ["SEKISHO_OIDC_CLIENT_ID", "AUTH0_CLIENT_ID", "SEKISHO_OIDC_CLIENT_SECRET", "AUTH0_CLIENT_SECRET"]
                {
                    if get(variable).is_some() {
                        return Err(bad(
                            variable,
                            "is set but no provider is: set AUTH0_DOMAIN or SEKISHO_OIDC_ISSUER",
                        ));
                    }
                }
                return Ok(None);
            }
        };
        check_issuer(&issuer, issuer_var, environment)?;
        let client_id = either(get, "SEKISHO_OIDC_CLIENT_ID", "AUTH0_CLIENT_ID")?.ok_or_else(|| {
            bad("AUTH0_CLIENT_ID", format!("is required with {issuer_var} (or SEKISHO_OIDC_CLIENT_ID)"))
        })?;
        let client_secret = either(get, "SEKISHO_OIDC_CLIENT_SECRET", "AUTH0_CLIENT_SECRET")?.ok_or_else(|| {
            bad("AUTH0_CLIENT_SECRET", format!("is required with {issuer_var} (or SEKISHO_OIDC_CLIENT_SECRET)"))
        })?;
        let scope = get("SEKISHO_OIDC_SCOPE").map_or_else(|| DEFAULT_SCOPE.to_owned(), |s| s.trim().to_owned());
        if !scope.split(' ').any(|s| s == "openid") || scope.contains(['"', '\\']) {
            return Err(bad("SEKISHO_OIDC_SCOPE", "must be space-separated scopes including `openid`"));
        }
        let failures = number(get, "SEKISHO_BREAKER_FAILURES", u64::from(DEFAULT_FAILURES), 1, 1000)? as u32;
        let cooldown = number(get, "SEKISHO_BREAKER_COOLDOWN_SECS", DEFAULT_COOLDOWN.as_secs(), 1, 3600)?;
        Ok(Some(OidcSettings {
            provider,
            issuer,
            client_id,
            client_secret: ClientSecret(client_secret),
            scope,
            breaker: BreakerSettings { failures, cooldown: Duration::from_secs(cooldown) },
        }))
    }
}

fn either(
    get: &dyn Fn(&str) -> Option<String>,
    ours: &'static str,
    auth0: &'static str,
) -> Result<Option<String>, ConfigError> {
    match (get(ours), get(auth0)) {
        (Some(_), Some(_)) => Err(bad(ours, format!("set either {ours} or {auth0}, not both"))),
        (a, b) => Ok(a.or(b).map(|v| v.trim().to_owned())),
    }
}

fn number(
    get: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match get(variable) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u64>().ok().filter(|n| (min..=max).contains(n)).ok_or_else(|| {
            bad(variable, format!("must be a whole number between {min} and {max}, got {}", crate::config::shown(&v)))
        }),
    }
}

fn check_issuer(issuer: &str, variable: &'static str, environment: Environment) -> Result<(), ConfigError> {
    let url =
        Url::parse(issuer).map_err(|_| bad(variable, "must be an absolute URL such as https://login.example.com/"))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(bad(variable, "must not carry a query, fragment or credentials"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match url.host() {
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                Some(Host::Domain(d)) => d == "localhost",
                None => false,
            };
            if !loopback {
                Err(bad(variable, "must be https (http is accepted on loopback only, for tests)"))
            } else if environment == Environment::Production {
                Err(bad(variable, "must be https when SEKISHO_ENV=production"))
            } else {
                Ok(())
            }
        }
        _ => Err(bad(variable, "must be an https URL")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)], environment: Environment) -> Result<Option<OidcSettings>, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        OidcSettings::from_lookup(&|name| map.get(name).cloned(), environment)
    }

    fn variable_of(vars: &[(&str, &str)]) -> &'static str {
        settings(vars, Environment::Development).err().map_or("<accepted>", |e| e.variable)
    }

    #[test]
    fn auth0_preset() {
        let s = settings(
            &[("AUTH0_DOMAIN", "acme.eu.auth0.com"), ("AUTH0_CLIENT_ID", "abc"), ("AUTH0_CLIENT_SECRET", "s3cret")],
            Environment::Production,
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.provider, "auth0");
        assert_eq!(s.issuer, "https://acme.eu.auth0.com/");
        assert_eq!(s.client_id, "abc");
        assert_eq!(s.scope, "openid profile email");
        assert_eq!(s.breaker, BreakerSettings::default());
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn generic_issuer_and_breaker_settings() {
        let s = settings(
            &[
                ("SEKISHO_OIDC_ISSUER", "http://127.0.0.1:4000"),
                ("SEKISHO_OIDC_CLIENT_ID", "sekisho"),
                ("SEKISHO_OIDC_CLIENT_SECRET", "x"),
                ("SEKISHO_BREAKER_FAILURES", "3"),
                ("SEKISHO_BREAKER_COOLDOWN_SECS", "2"),
            ],
            Environment::Development,
        )
        .unwrap()
        .unwrap();
        assert_eq!((s.provider, s.issuer.as_str()), ("oidc", "http://127.0.0.1:4000"));
        assert_eq!(s.breaker, BreakerSettings { failures: 3, cooldown: Duration::from_secs(2) });
    }

    #[test]
    fn nothing_configured_is_none() {
        assert!(settings(&[], Environment::Production).unwrap().is_none());
    }

    #[test]
    fn each_problem_names_its_variable() {
        let id = ("AUTH0_CLIENT_ID", "abc");
        let secret = ("AUTH0_CLIENT_SECRET", "x");
        assert_eq!(variable_of(&[("AUTH0_DOMAIN", "https://acme.auth0.com/"), id, secret]), "AUTH0_DOMAIN");
        assert_eq!(variable_of(&[("AUTH0_DOMAIN", "acme.auth0.com"), secret]), "AUTH0_CLIENT_ID");
        assert_eq!(variable_of(&[("AUTH0_DOMAIN", "acme.auth0.com"), id]), "AUTH0_CLIENT_SECRET");
        assert_eq!(variable_of(&[id, secret]), "AUTH0_CLIENT_ID");
        assert_eq!(
            variable_of(&[("AUTH0_DOMAIN", "a.auth0.com"), ("SEKISHO_OIDC_ISSUER", "https://b/"), id, secret]),
            "SEKISHO_OIDC_ISSUER"
        );
        assert_eq!(
            variable_of(&[("SEKISHO_OIDC_ISSUER", "http://idp.example.com"), id, secret]),
            "SEKISHO_OIDC_ISSUER"
        );
        assert_eq!(variable_of(&[("SEKISHO_OIDC_ISSUER", "not a url"), id, secret]), "SEKISHO_OIDC_ISSUER");
        assert_eq!(
            variable_of(&[
                ("SEKISHO_OIDC_ISSUER", "https://idp.example.com"),
                ("SEKISHO_OIDC_SCOPE", "profile"),
                id,
                secret
            ]),
            "SEKISHO_OIDC_SCOPE"
        );
        assert_eq!(
            variable_of(&[("AUTH0_DOMAIN", "a.auth0.com"), ("SEKISHO_BREAKER_FAILURES", "0"), id, secret]),
            "SEKISHO_BREAKER_FAILURES"
        );
        assert_eq!(
            variable_of(&[("AUTH0_DOMAIN", "a.auth0.com"), ("SEKISHO_BREAKER_COOLDOWN_SECS", "30s"), id, secret]),
            "SEKISHO_BREAKER_COOLDOWN_SECS"
        );
        let loopback =
            settings(&[("SEKISHO_OIDC_ISSUER", "http://127.0.0.1:4000"), id, secret], Environment::Production);
        assert_eq!(loopback.unwrap_err().variable, "SEKISHO_OIDC_ISSUER");
    }
}
