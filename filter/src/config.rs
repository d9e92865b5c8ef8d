//! The plugin configuration Envoy hands the filter, checked at load time.
//!
//! Unknown fields and out-of-range values are refused, so a typo in the Envoy
//! configuration stops the filter from loading (with a log line) instead of
//! silently running with defaults.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// The Envoy cluster of the authorization service.
    pub authz_cluster: String,
    /// `:authority` sent on calls to the service.
    pub authz_authority: String,
    /// How often the JWKS and the policy are fetched when all is well.
    pub refresh_seconds: u64,
    /// How soon a failed fetch is retried.
    pub retry_seconds: u64,
    /// The least time between two refreshes caused by tokens with an unknown `kid`.
    pub unknown_kid_refresh_seconds: u64,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: i64,
    pub max_token_bytes: usize,
    /// Verified credentials kept per worker.
    pub cache_entries: usize,
    /// Largest JSON-RPC body the filter reads to decide scopes.
    pub max_body_bytes: usize,
    /// Timeout of calls to the service.
    pub call_timeout_ms: u64,
    /// The longest the filter trusts an API key verdict, whatever the service
    /// says: the upper bound on how long a revoked key keeps working.
    pub max_api_key_cache_seconds: i64,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            authz_cluster: "sekisho_authz".into(),
            authz_authority: "sekisho-authz".into(),
            refresh_seconds: 30,
            retry_seconds: 2,
            unknown_kid_refresh_seconds: 10,
            leeway_seconds: 30,
            max_token_bytes: sekisho_contract::jws::DEFAULT_MAX_TOKEN_BYTES,
            cache_entries: 10_000,
            max_body_bytes: 1024 * 1024,
            call_timeout_ms: 2_000,
            max_api_key_cache_seconds: 30,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("plugin configuration is not valid JSON for this filter: {0}")]
    Json(String),
    #[error("plugin configuration: {0}")]
    Range(&'static str),
}

impl FilterConfig {
    /// Parses the plugin configuration; an empty one means all defaults.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: FilterConfig = if bytes.iter().all(u8::is_ascii_whitespace) {
            FilterConfig::default()
        } else {
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Json(e.to_string()))?
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.authz_cluster.is_empty() {
            return Err(ConfigError::Range("authz_cluster must name an Envoy cluster"));
        }
        if self.authz_authority.is_empty() {
            return Err(ConfigError::Range("authz_authority must not be empty"));
        }
        if !(1..=86_400).contains(&self.refresh_seconds) {
            return Err(ConfigError::Range("refresh_seconds must be between 1 and 86400"));
        }
        if !(1..=self.refresh_seconds).contains(&self.retry_seconds) {
            return Err(ConfigError::Range("retry_seconds must be between 1 and refresh_seconds"));
        }
        if !(0..=300).contains(&self.leeway_seconds) {
            return Err(ConfigError::Range("leeway_seconds must be between 0 and 300"));
        }
        if !(256..=65_536).contains(&self.max_token_bytes) {
            return Err(ConfigError::Range("max_token_bytes must be between 256 and 65536"));
        }
        if !(1..=1_000_000).contains(&self.cache_entries) {
            return Err(ConfigError::Range("cache_entries must be between 1 and 1000000"));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body_bytes) {
            return Err(ConfigError::Range("max_body_bytes must be between 1 KiB and 16 MiB"));
        }
        if !(1..=3600).contains(&self.max_api_key_cache_seconds) {
            return Err(ConfigError::Range("max_api_key_cache_seconds must be between 1 and 3600"));
        }
        if !(100..=60_000).contains(&self.call_timeout_ms) {
            return Err(ConfigError::Range("call_timeout_ms must be between 100 and 60000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_means_defaults() {
        assert_eq!(FilterConfig::parse(b"").unwrap(), FilterConfig::default());
        assert_eq!(FilterConfig::parse(b"  \n").unwrap(), FilterConfig::default());
    }

    #[test]
    fn fields_override_defaults() {
        let c = FilterConfig::parse(br#"{"authz_cluster":"a","refresh_seconds":60,"leeway_seconds":5}"#).unwrap();
        assert_eq!((c.authz_cluster.as_str(), c.refresh_seconds, c.leeway_seconds), ("a", 60, 5));
        assert_eq!(c.cache_entries, 10_000);
    }

    #[test]
    fn typos_and_bad_values_are_refused() {
        assert!(matches!(FilterConfig::parse(br#"{"refresh_second":60}"#), Err(ConfigError::Json(_))));
        assert!(matches!(FilterConfig::parse(b"{"), Err(ConfigError::Json(_))));
        assert!(matches!(FilterConfig::parse(br#"{"leeway_seconds":-1}"#), Err(ConfigError::Range(_))));
        assert!(matches!(FilterConfig::parse(br#"{"cache_entries":0}"#), Err(ConfigError::Range(_))));
        assert!(matches!(FilterConfig::parse(br#"{"authz_cluster":""}"#), Err(ConfigError::Range(_))));
        assert!(matches!(
            FilterConfig::parse(br#"{"refresh_seconds":5,"retry_seconds":10}"#),
            Err(ConfigError::Range(_))
        ));
    }
}
