//! Configuration from environment variables, validated once at start.
//!
//! Every problem is reported as one [`ConfigError`] that names the variable, so an
//! operator sees `SEKISHO_MASTER_KEY: must be base64 of 32 bytes` rather than a
//! failure deep inside start-up. Reading goes through a lookup function so tests
//! can build a configuration without touching the process environment.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::SigningKey;
use sekisho_contract::resource::validate_base_url;
use zeroize::Zeroize;

use crate::api_keys::ApiKeySettings;
use crate::crypto::master_key::{MASTER_KEY_BYTES, MasterKey};
use crate::http::client_ip::{self, TrustedProxies};
use crate::keys::env_key;
use crate::rate_limit::RateLimitSettings;

pub mod oauth;

pub use oauth::OAuthConfig;

pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_DATA_DIR: &str = ".sekisho/data";
pub const DEFAULT_ACCESS_TOKEN_TTL: i64 = 900;
pub const DEFAULT_KEY_RELOAD_SECS: u64 = 5;
/// Longest access-token lifetime an operator may configure; RFC 9068 tokens
/// cannot be revoked, so they must stay short.
pub const MAX_ACCESS_TOKEN_TTL: i64 = 24 * 3600;
/// Shortest admin token accepted in production: it is the only thing guarding the admin API.
const MIN_PRODUCTION_ADMIN_TOKEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// The bearer token of the admin API. `Debug` never prints it.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `PUBLIC_BASE_URL`, byte-exact: the issuer and the base of every resource URI.
    pub issuer: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_kind: DatabaseKind,
    /// From `JWT_PRIVATE_KEY`: when set it is the only signing key and is never stored.
    pub env_signing_key: Option<SigningKey>,
    /// From `SEKISHO_MASTER_KEY`; `None` means "use or create `{data_dir}/master.key`".
    pub master_key: Option<MasterKey>,
    /// From `SEKISHO_MASTER_KEYS_PREVIOUS`: keys that only open values sealed
    /// before a rotation, until `keys reencrypt` has re-sealed them.
    pub previous_master_keys: Vec<MasterKey>,
    pub environment: Environment,
    pub admin_token: Option<AdminToken>,
    pub access_token_ttl: i64,
    pub key_reload_interval: Duration,
    pub log_format: LogFormat,
    /// The OAuth authorization server's settings.
    pub oauth: OAuthConfig,
    /// API key verification: the revocation bound and the usage flush interval.
    pub api_keys: ApiKeySettings,
    /// Proxies whose `X-Forwarded-For` names the client (`SEKISHO_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Rate limits per endpoint group, and the optional shared store (`SEKISHO_RATE_LIMIT_*`, `SEKISHO_REDIS_*`).
    pub rate_limits: RateLimitSettings,
    /// The upstream OpenID provider users log in at (`AUTH0_*` or `SEKISHO_OIDC_*`), if any.
    pub oidc: Option<crate::login::oidc::settings::OidcSettings>,
}

/// A configuration problem, naming the variable at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

/// A value that is not secret, quoted for an error message: escaped so that
/// the message stays one line, and cut short.
pub(crate) fn shown(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    let cut: String = value.chars().take(MAX_CHARS).collect();
    if cut.len() < value.len() { format!("{cut:?}…") } else { format!("{cut:?}") }
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from `lookup`; empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let issuer = get("PUBLIC_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        validate_base_url(&issuer).map_err(|e| bad("PUBLIC_BASE_URL", format!("{e}, got {}", shown(&issuer))))?;

        let listen = get("SEKISHO_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen
            .parse()
            .map_err(|_| bad("SEKISHO_LISTEN", format!("must be an IP:port address, got {}", shown(&listen))))?;

        let data_dir = PathBuf::from(get("SEKISHO_DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()));

        let database_url = get("DATABASE_URL").unwrap_or_else(|| default_database_url(&data_dir));
        let database_kind = database_kind(&database_url)?;

        let environment = match get("SEKISHO_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => {
                return Err(bad("SEKISHO_ENV", format!("must be development or production, got {}", shown(other))));
            }
        };

        let env_signing_key = match (get("JWT_PRIVATE_KEY"), get("JWT_PUBLIC_KEY")) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(bad("JWT_PRIVATE_KEY", "must be set when JWT_PUBLIC_KEY is set"));
            }
            (Some(private), public) => {
                Some(env_key::from_pems(&private, public.as_deref()).map_err(|e| bad(e.variable(), e.to_string()))?)
            }
        };

        let master_key = get("SEKISHO_MASTER_KEY").map(|v| master_key_from("SEKISHO_MASTER_KEY", &v)).transpose()?;
        let previous_master_keys = get("SEKISHO_MASTER_KEYS_PREVIOUS")
            .map(|list| {
                list.split(',')
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| master_key_from("SEKISHO_MASTER_KEYS_PREVIOUS", v))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        if environment == Environment::Production && !is_https_or_loopback(&issuer) {
            return Err(bad(
                "PUBLIC_BASE_URL",
                format!("must be https when SEKISHO_ENV=production (http only on loopback), got {}", shown(&issuer)),
            ));
        }
        if environment == Environment::Production && master_key.is_none() {
            return Err(bad("SEKISHO_MASTER_KEY", "is required when SEKISHO_ENV=production"));
        }

        let admin_token = get("SEKISHO_ADMIN_TOKEN").map(|t| AdminToken(t.trim().to_owned()));
        if environment == Environment::Production
            && admin_token.as_ref().is_some_and(|t| t.0.len() < MIN_PRODUCTION_ADMIN_TOKEN)
        {
            return Err(bad(
                "SEKISHO_ADMIN_TOKEN",
                format!("must be at least {MIN_PRODUCTION_ADMIN_TOKEN} characters in production"),
            ));
        }

        let access_token_ttl = match get("SEKISHO_ACCESS_TOKEN_TTL") {
            None => DEFAULT_ACCESS_TOKEN_TTL,
            Some(v) => {
                v.trim().parse::<i64>().ok().filter(|t| (1..=MAX_ACCESS_TOKEN_TTL).contains(t)).ok_or_else(|| {
                    let message = format!("must be seconds between 1 and {MAX_ACCESS_TOKEN_TTL}, got {}", shown(&v));
                    bad("SEKISHO_ACCESS_TOKEN_TTL", message)
                })?
            }
        };

        let key_reload_secs = match get("SEKISHO_KEY_RELOAD_SECS") {
            None => DEFAULT_KEY_RELOAD_SECS,
            Some(v) => v.trim().parse::<u64>().ok().filter(|s| (1..=3600).contains(s)).ok_or_else(|| {
                bad("SEKISHO_KEY_RELOAD_SECS", format!("must be seconds between 1 and 3600, got {}", shown(&v)))
            })?,
        };

        let log_format = match get("SEKISHO_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(bad("SEKISHO_LOG_FORMAT", format!("must be text or json, got {}", shown(other))));
            }
        };

        let oauth = OAuthConfig::from_lookup(&get, environment)?;
        let api_keys = ApiKeySettings::from_lookup(&get)?;
        let trusted_proxies = TrustedProxies::parse(
            &get("SEKISHO_TRUSTED_PROXIES").unwrap_or_else(|| client_ip::DEFAULT_TRUSTED_PROXIES.into()),
        )
        .map_err(|e| bad("SEKISHO_TRUSTED_PROXIES", e))?;
        let rate_limits = RateLimitSettings::from_lookup(&get)?;
        let oidc = crate::login::oidc::settings::OidcSettings::from_lookup(&get, environment)?;

        Ok(Config {
            issuer,
            listen,
            data_dir,
            database_url,
            database_kind,
            env_signing_key,
            master_key,
            previous_master_keys,
            environment,
            admin_token,
            access_token_ttl,
            key_reload_interval: Duration::from_secs(key_reload_secs),
            log_format,
            oauth,
            api_keys,
            trusted_proxies,
            rate_limits,
            oidc,
        })
    }

    /// What `serve` needs beyond what every command needs: production must not
    /// run with an unauthenticated or disabled admin API by accident.
    pub fn check_for_serving(&self) -> Result<(), ConfigError> {
        if self.environment == Environment::Production && self.admin_token.is_none() {
            return Err(bad("SEKISHO_ADMIN_TOKEN", "is required when SEKISHO_ENV=production"));
        }
        Ok(())
    }

    /// Where the master key lives when it does not come from the environment.
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }
}

fn master_key_from(variable: &'static str, value: &str) -> Result<MasterKey, ConfigError> {
    let mut bytes = STANDARD.decode(value.trim()).map_err(|_| bad(variable, "must be base64 (standard alphabet)"))?;
    let key = MasterKey::from_slice(&bytes);
    bytes.zeroize();
    key.ok_or_else(|| bad(variable, format!("must be base64 of {MASTER_KEY_BYTES} bytes")))
}

fn default_database_url(data_dir: &Path) -> String {
    format!("sqlite://{}/sekisho.db?mode=rwc", data_dir.display())
}

fn is_https_or_loopback(base: &str) -> bool {
    let Some(rest) = base.strip_prefix("http://") else {
        return true;
    };
    let host = rest.rsplit_once(':').map_or(rest, |(host, _)| host);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

fn database_kind(url: &str) -> Result<DatabaseKind, ConfigError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.trim_start_matches('/');
        let file = path.split_once('?').map_or(path, |(file, _)| file);
        if file.is_empty() {
            return Err(bad("DATABASE_URL", "a sqlite: URL must name a file (sqlite://path/to/file.db) or :memory:"));
        }
        Ok(DatabaseKind::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Never echo the URL: it may carry a password.
        let parsed =
            url::Url::parse(url).map_err(|e| bad("DATABASE_URL", format!("is not a valid PostgreSQL URL ({e})")))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(bad("DATABASE_URL", "a PostgreSQL URL must name a host: postgresql://user@host:5432/database"));
        }
        Ok(DatabaseKind::Postgres)
    } else {
        // Never echo the URL: it may carry a password.
        Err(bad("DATABASE_URL", "must start with sqlite:, postgres:// or postgresql://"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    fn variable_of(vars: &[(&str, &str)]) -> &'static str {
        config(vars).err().map_or("<accepted>", |e| e.variable)
    }

    #[test]
    fn defaults_are_a_local_development_setup() {
        let c = config(&[]).unwrap();
        assert_eq!(c.issuer, "http://127.0.0.1:8080");
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.database_url, "sqlite://.sekisho/data/sekisho.db?mode=rwc");
        assert_eq!(c.database_kind, DatabaseKind::Sqlite);
        assert_eq!(c.environment, Environment::Development);
        assert_eq!(c.access_token_ttl, 900);
        assert!(c.admin_token.is_none() && c.master_key.is_none() && c.env_signing_key.is_none());
        assert!(c.check_for_serving().is_ok());
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        assert_eq!(variable_of(&[("PUBLIC_BASE_URL", "http://h:1/")]), "PUBLIC_BASE_URL");
        assert_eq!(variable_of(&[("SEKISHO_LISTEN", "localhost")]), "SEKISHO_LISTEN");
        assert_eq!(variable_of(&[("DATABASE_URL", "mysql://x")]), "DATABASE_URL");
        assert_eq!(variable_of(&[("DATABASE_URL", "postgres://")]), "DATABASE_URL");
        assert_eq!(variable_of(&[("DATABASE_URL", "postgresql://u:p@:5432/db")]), "DATABASE_URL");
        assert_eq!(variable_of(&[("DATABASE_URL", "sqlite://")]), "DATABASE_URL");
        assert_eq!(variable_of(&[("SEKISHO_ENV", "prod")]), "SEKISHO_ENV");
        assert_eq!(variable_of(&[("SEKISHO_MASTER_KEY", "c2hvcnQ=")]), "SEKISHO_MASTER_KEY");
        assert_eq!(variable_of(&[("SEKISHO_MASTER_KEY", "not base64!")]), "SEKISHO_MASTER_KEY");
        assert_eq!(variable_of(&[("SEKISHO_MASTER_KEYS_PREVIOUS", "c2hvcnQ=")]), "SEKISHO_MASTER_KEYS_PREVIOUS");
        assert_eq!(variable_of(&[("SEKISHO_ACCESS_TOKEN_TTL", "0")]), "SEKISHO_ACCESS_TOKEN_TTL");
        assert_eq!(variable_of(&[("SEKISHO_ACCESS_TOKEN_TTL", "15m")]), "SEKISHO_ACCESS_TOKEN_TTL");
        assert_eq!(variable_of(&[("SEKISHO_KEY_RELOAD_SECS", "0")]), "SEKISHO_KEY_RELOAD_SECS");
        assert_eq!(variable_of(&[("SEKISHO_LOG_FORMAT", "xml")]), "SEKISHO_LOG_FORMAT");
        assert_eq!(variable_of(&[("JWT_PUBLIC_KEY", "x")]), "JWT_PRIVATE_KEY");
        assert_eq!(variable_of(&[("JWT_PRIVATE_KEY", "not a pem")]), "JWT_PRIVATE_KEY");
    }

    #[test]
    fn production_needs_a_master_key_and_an_admin_token() {
        let key = STANDARD.encode([1u8; 32]);
        assert_eq!(variable_of(&[("SEKISHO_ENV", "production")]), "SEKISHO_MASTER_KEY");
        let c = config(&[("SEKISHO_ENV", "production"), ("SEKISHO_MASTER_KEY", &key)]).unwrap();
        assert_eq!(c.check_for_serving().map_err(|e| e.variable), Err("SEKISHO_ADMIN_TOKEN"));
        let short = [("SEKISHO_ENV", "production"), ("SEKISHO_MASTER_KEY", &key), ("SEKISHO_ADMIN_TOKEN", "short")];
        assert_eq!(variable_of(&short), "SEKISHO_ADMIN_TOKEN");
    }

    #[test]
    fn errors_never_echo_a_database_password() {
        for url in ["mysql://u:hunter2@h/db", "postgres://u:hunter2@h:port/db", "postgresql://u:hunter2@/db"] {
            let err = config(&[("DATABASE_URL", url)]).unwrap_err();
            assert_eq!(err.variable, "DATABASE_URL");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn errors_show_the_value_on_one_line() {
        let err = config(&[("PUBLIC_BASE_URL", "foo")]).unwrap_err();
        assert_eq!(err.to_string(), r#"PUBLIC_BASE_URL: base URL must start with http:// or https://, got "foo""#);
        let err = config(&[("SEKISHO_LISTEN", "a\nb")]).unwrap_err();
        assert_eq!(err.to_string().lines().count(), 1, "{err}");
        let long = "x".repeat(500);
        assert!(config(&[("SEKISHO_ENV", &long)]).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn production_wants_an_https_issuer_off_loopback() {
        let key = STANDARD.encode([1u8; 32]);
        let production = |base: &str| {
            variable_of(&[("SEKISHO_ENV", "production"), ("SEKISHO_MASTER_KEY", &key), ("PUBLIC_BASE_URL", base)])
        };
        assert_eq!(production("http://mcp.example.com"), "PUBLIC_BASE_URL");
        assert_eq!(production("https://mcp.example.com"), "<accepted>");
        assert_eq!(production("http://127.0.0.1:8080"), "<accepted>");
        assert_eq!(production("http://localhost"), "<accepted>");
    }

    #[test]
    fn postgres_urls_are_recognised() {
        for url in ["postgres://u@h/db", "postgresql://u@h/db"] {
            assert_eq!(config(&[("DATABASE_URL", url)]).unwrap().database_kind, DatabaseKind::Postgres);
        }
    }
}
