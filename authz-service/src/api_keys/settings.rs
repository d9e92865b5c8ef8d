//! The API key settings of the configuration, read with the rest of it.

use std::time::Duration;

use crate::config::ConfigError;

pub const CACHE_SECONDS_VARIABLE: &str = "SEKISHO_API_KEY_CACHE_SECONDS";
pub const FLUSH_VARIABLE: &str = "SEKISHO_API_KEY_USAGE_FLUSH_SECS";
/// SPEC K3: a revocation reaches every filter within 30 seconds by default.
pub const DEFAULT_CACHE_SECONDS: u32 = 30;
pub const MAX_CACHE_SECONDS: u32 = 3600;
pub const DEFAULT_FLUSH_SECS: u64 = 5;
pub const MAX_FLUSH_SECS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKeySettings {
    /// How long the filter may cache a verify answer: the revocation bound.
    pub cache_seconds: u32,
    /// How often recorded usage and refusals are written to the database.
    pub usage_flush_interval: Duration,
}

impl Default for ApiKeySettings {
    fn default() -> Self {
        ApiKeySettings {
            cache_seconds: DEFAULT_CACHE_SECONDS,
            usage_flush_interval: Duration::from_secs(DEFAULT_FLUSH_SECS),
        }
    }
}

impl ApiKeySettings {
    /// `get` returns a variable's value, `None` when unset or empty.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let cache_seconds = match get(CACHE_SECONDS_VARIABLE) {
            None => DEFAULT_CACHE_SECONDS,
            Some(v) => seconds_in(CACHE_SECONDS_VARIABLE, &v, MAX_CACHE_SECONDS.into())?
                .try_into()
                .unwrap_or(MAX_CACHE_SECONDS),
        };
        let flush_secs = match get(FLUSH_VARIABLE) {
            None => DEFAULT_FLUSH_SECS,
            Some(v) => seconds_in(FLUSH_VARIABLE, &v, MAX_FLUSH_SECS)?,
        };
        Ok(ApiKeySettings { cache_seconds, usage_flush_interval: Duration::from_secs(flush_secs) })
    }
}

fn seconds_in(variable: &'static str, value: &str, max: u64) -> Result<u64, ConfigError> {
    value.trim().parse::<u64>().ok().filter(|s| (1..=max).contains(s)).ok_or_else(|| {
        let message = format!("must be seconds between 1 and {max}, got {}", crate::config::shown(value));
        ConfigError { variable, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<ApiKeySettings, ConfigError> {
        ApiKeySettings::from_lookup(&|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn defaults_bound_revocation_at_thirty_seconds() {
        assert_eq!(settings(&[]).unwrap(), ApiKeySettings::default());
        assert_eq!(ApiKeySettings::default().cache_seconds, 30);
    }

    #[test]
    fn reads_and_bounds_both_variables() {
        let s = settings(&[(CACHE_SECONDS_VARIABLE, "7"), (FLUSH_VARIABLE, "1")]).unwrap();
        assert_eq!(s.cache_seconds, 7);
        assert_eq!(s.usage_flush_interval, Duration::from_secs(1));
        for bad in ["0", "-1", "30s", "3601"] {
            let e = settings(&[(CACHE_SECONDS_VARIABLE, bad)]).unwrap_err();
            assert_eq!(e.variable, CACHE_SECONDS_VARIABLE, "{bad}");
        }
        let e = settings(&[(FLUSH_VARIABLE, "301")]).unwrap_err();
        assert_eq!(e.variable, FLUSH_VARIABLE);
    }
}
