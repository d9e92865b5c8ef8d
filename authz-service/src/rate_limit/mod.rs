//! Rate limits on every endpoint of the service (SPEC S1), per client IP and,
//! where the client is authenticated, per client; shared across replicas
//! through Redis when one is configured (SPEC D2).
//!
//! - [`policy`]: the limits, their rates and which requests they cover;
//!   [`settings`]: the environment variables;
//! - [`gcra`]: the algorithm; [`memory`]: the bounded in-process store;
//!   [`redis_store`]: the shared store and its fallback;
//! - [`layer`]: the middleware that applies the per-IP limit of every request.
//!   The per-client limit is checked by the token, revocation and
//!   introspection handlers once they have authenticated the client: an
//!   unauthenticated `client_id` must not be able to spend another client's budget.
//!
//! Over a limit, a request gets `429` with `Retry-After` (see [`Exceeded`]).
//! Not here: the per-credential limit of MCP traffic, which Envoy enforces
//! (`envoy/sekisho.yaml.tmpl`, `local_ratelimit`).

pub mod gcra;
pub mod layer;
pub mod memory;
pub mod policy;
pub mod redis_store;
pub mod settings;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, header};

use crate::error::Error;
use crate::metrics::Metrics;
use gcra::Verdict;
use memory::MemoryStore;
pub use policy::{Limit, Rate};
use redis_store::RedisStore;
pub use settings::RateLimitSettings;

/// The service's limits and their counters; cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    inner: Arc<Inner>,
}

struct Inner {
    settings: RateLimitSettings,
    memory: MemoryStore,
    redis: Option<RedisStore>,
    metrics: Metrics,
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, metrics: Metrics) -> anyhow::Result<RateLimits> {
        let redis = match &settings.redis_url {
            Some(url) => Some(
                RedisStore::new(url, &settings.redis_prefix)
                    .map_err(|_| anyhow::anyhow!("SEKISHO_REDIS_URL is not a valid Redis URL"))?,
            ),
            None => None,
        };
        let memory = MemoryStore::new(settings.max_keys);
        Ok(RateLimits { inner: Arc::new(Inner { settings: settings.clone(), memory, redis, metrics }) })
    }

    /// The per-IP limit `limit` for a request from `ip`. IPv6 addresses count
    /// per /64: one host usually holds a whole /64, and could otherwise
    /// present a fresh address with every request.
    pub async fn check_ip(&self, limit: Limit, ip: IpAddr) -> Result<(), Error> {
        let key = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        };
        self.check(limit, &format!("ip:{key}")).await
    }

    /// The per-client limit of the token, revocation and introspection endpoints.
    pub async fn check_client(&self, client_id: &str) -> Result<(), Error> {
        self.check(Limit::Token, &format!("client:{client_id}")).await
    }

    async fn check(&self, limit: Limit, key: &str) -> Result<(), Error> {
        let Some(rate) = self.inner.settings.rate(limit) else {
            return Ok(());
        };
        let key = format!("{}:{key}", limit.name());
        let verdict = match &self.inner.redis {
            Some(redis) => match redis.check(&key, rate).await {
                Ok(verdict) => verdict,
                Err(redis_store::Unreachable) => self.inner.memory.check(&key, rate),
            },
            None => self.inner.memory.check(&key, rate),
        };
        match verdict {
            Verdict::Allowed { .. } => Ok(()),
            Verdict::Limited { retry_after } => {
                self.inner.metrics.rate_limited(limit.name());
                Err(Error::TooManyRequests(Exceeded { limit, rate, retry_after }))
            }
        }
    }

    /// Keys in the in-process table (tests and diagnostics).
    pub fn tracked_keys(&self) -> usize {
        self.inner.memory.len()
    }
}

/// A request over its limit: what the 429 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: Limit,
    pub rate: Rate,
    pub retry_after: Duration,
}

impl Exceeded {
    /// Whole seconds, rounded up and at least 1, so that a client that waits
    /// exactly this long is allowed.
    pub fn retry_after_secs(&self) -> u64 {
        (self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)).max(1)
    }

    /// `Retry-After` (RFC 9110 §10.2.3), and the policy and state in the form
    /// of the IETF RateLimit header fields draft (`RateLimit-Policy`, `RateLimit`).
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let name = self.limit.name();
        let secs = self.retry_after_secs();
        let policy = format!("\"{name}\";q={};w={}", self.rate.count, self.rate.window.as_secs());
        let state = format!("\"{name}\";r=0;t={secs}");
        let mut headers = vec![(header::RETRY_AFTER, HeaderValue::from(secs))];
        for (field, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.push((HeaderName::from_static(field), value));
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exceeded(retry_after: Duration) -> Exceeded {
        Exceeded { limit: Limit::Register, rate: Rate::per_minute(10), retry_after }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_never_zero() {
        assert_eq!(exceeded(Duration::from_micros(1)).retry_after_secs(), 1);
        assert_eq!(exceeded(Duration::ZERO).retry_after_secs(), 1);
        assert_eq!(exceeded(Duration::from_secs(6)).retry_after_secs(), 6);
        assert_eq!(exceeded(Duration::from_millis(6001)).retry_after_secs(), 7);
    }

    #[test]
    fn the_headers_say_when_to_retry_and_which_policy_refused() {
        let headers = exceeded(Duration::from_millis(5500)).headers();
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.to_str().unwrap().to_owned());
        assert_eq!(get("retry-after").as_deref(), Some("6"));
        assert_eq!(get("ratelimit-policy").as_deref(), Some("\"register\";q=10;w=60"));
        assert_eq!(get("ratelimit").as_deref(), Some("\"register\";r=0;t=6"));
    }
}
