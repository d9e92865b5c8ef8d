//! Rate-limit configuration from the environment: one rate per [`Limit`], the
//! bound of the in-process table, and the optional shared store (Redis).

use std::collections::HashMap;

use crate::config::ConfigError;
use crate::rate_limit::policy::{Limit, Rate};

/// Keys the in-process table holds at most (`SEKISHO_RATE_LIMIT_MAX_KEYS`).
pub const DEFAULT_MAX_KEYS: usize = 100_000;
/// Prefix of every key in Redis (`SEKISHO_REDIS_PREFIX`).
pub const DEFAULT_REDIS_PREFIX: &str = "sekisho:rl:";

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    rates: HashMap<Limit, Rate>,
    pub max_keys: usize,
    /// `SEKISHO_REDIS_URL`: counters shared by every replica. Never logged: it may hold a password.
    pub redis_url: Option<String>,
    pub redis_prefix: String,
}

impl RateLimitSettings {
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let all_off = match get("SEKISHO_RATE_LIMIT").as_deref().map(str::trim) {
            None | Some("on") => false,
            Some("off") => true,
            Some(other) => return Err(bad("SEKISHO_RATE_LIMIT", format!("`{other}` is not on or off"))),
        };
        let mut rates = HashMap::new();
        for limit in Limit::ALL {
            let rate = match get(limit.variable()) {
                Some(text) => Rate::parse(&text).map_err(|e| bad(limit.variable(), e))?,
                None => limit.default_rate(),
            };
            if let Some(rate) = rate.filter(|_| !all_off) {
                rates.insert(limit, rate);
            }
        }
        let max_keys = match get("SEKISHO_RATE_LIMIT_MAX_KEYS") {
            None => DEFAULT_MAX_KEYS,
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (16..=10_000_000).contains(n))
                .ok_or_else(|| bad("SEKISHO_RATE_LIMIT_MAX_KEYS", "must be a number between 16 and 10000000"))?,
        };
        let redis_url = get("SEKISHO_REDIS_URL").map(|u| u.trim().to_owned());
        if let Some(url) = &redis_url {
            // Never echo the URL: it may carry a password.
            if !url.starts_with("redis://") && !url.starts_with("redis+unix://") && !url.starts_with("unix://") {
                return Err(bad("SEKISHO_REDIS_URL", "must start with redis:// (or unix:// for a socket)"));
            }
            redis::Client::open(url.as_str()).map_err(|_| bad("SEKISHO_REDIS_URL", "is not a valid Redis URL"))?;
        }
        let redis_prefix = get("SEKISHO_REDIS_PREFIX").unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned());
        Ok(RateLimitSettings { rates, max_keys, redis_url, redis_prefix })
    }

    /// The rate of `limit`; `None` when it is off.
    pub fn rate(&self, limit: Limit) -> Option<Rate> {
        self.rates.get(&limit).copied()
    }
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<RateLimitSettings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        RateLimitSettings::from_lookup(&|name: &str| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_strict_for_registration_and_tokens_and_off_for_the_filter() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.rate(Limit::Register), Some(Rate::per_minute(10)));
        assert_eq!(s.rate(Limit::Token), Some(Rate::per_minute(60)));
        assert_eq!(s.rate(Limit::Internal), None);
        assert!(s.redis_url.is_none());
    }

    #[test]
    fn each_limit_can_be_set_or_turned_off() {
        let s = settings(&[("SEKISHO_RATE_LIMIT_TOKEN", "5/10s"), ("SEKISHO_RATE_LIMIT_REGISTER", "off")]).unwrap();
        assert_eq!(s.rate(Limit::Token).map(|r| r.count), Some(5));
        assert_eq!(s.rate(Limit::Register), None);
        let s = settings(&[("SEKISHO_RATE_LIMIT", "off"), ("SEKISHO_RATE_LIMIT_TOKEN", "5/10s")]).unwrap();
        assert!(Limit::ALL.iter().all(|l| s.rate(*l).is_none()));
    }

    #[test]
    fn bad_values_name_their_variable_and_never_echo_a_redis_password() {
        let variable = |vars: &[(&str, &str)]| settings(vars).err().map_or("<accepted>", |e| e.variable);
        assert_eq!(variable(&[("SEKISHO_RATE_LIMIT_TOKEN", "lots")]), "SEKISHO_RATE_LIMIT_TOKEN");
        assert_eq!(variable(&[("SEKISHO_RATE_LIMIT", "maybe")]), "SEKISHO_RATE_LIMIT");
        assert_eq!(variable(&[("SEKISHO_RATE_LIMIT_MAX_KEYS", "1")]), "SEKISHO_RATE_LIMIT_MAX_KEYS");
        let err = settings(&[("SEKISHO_REDIS_URL", "http://u:hunter2@h")]).unwrap_err();
        assert_eq!(err.variable, "SEKISHO_REDIS_URL");
        assert!(!err.to_string().contains("hunter2"));
        assert!(settings(&[("SEKISHO_REDIS_URL", "redis://127.0.0.1:6379/0")]).is_ok());
    }
}
