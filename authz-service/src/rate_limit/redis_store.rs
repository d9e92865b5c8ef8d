//! The shared store: the same GCRA as `gcra.rs`, run atomically inside Redis
//! by a Lua script, so every replica draws on one budget per key. Redis's own
//! clock (`TIME`) is used, so replicas whose clocks disagree still agree.
//!
//! Redis is optional at run time too: when it cannot be reached the caller
//! falls back to its in-process store (limits per replica, not none, and
//! never a 500). The outage is logged once when it starts and once when it
//! ends; while it lasts a reconnection is tried at most every
//! [`RETRY_AFTER_OUTAGE`], so requests do not each wait on a dead server.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::rate_limit::gcra::{self, Verdict};
use crate::rate_limit::policy::Rate;

/// Longest a request waits on Redis before using the in-process store.
const TIMEOUT: Duration = Duration::from_millis(250);
/// After a failure, how long requests use the in-process store before Redis is tried again.
const RETRY_AFTER_OUTAGE: Duration = Duration::from_secs(5);

/// KEYS[1]: the key. ARGV: window and interval in microseconds.
/// Returns `{1, remaining}` or `{0, microseconds to wait}`.
const GCRA_SCRIPT: &str = r"
local window = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  tat = math.max(tonumber(stored), now)
end
local new_tat = tat + interval
local ahead = new_tat - now
if ahead > window then
  return {0, ahead - window}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil(ahead / 1000))
return {1, math.floor((window - ahead) / interval)}
";

pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    script: redis::Script,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    /// Set while Redis is unreachable: when it failed.
    outage: Mutex<Option<Instant>>,
}

/// Redis could not answer; the caller uses its in-process store.
pub struct Unreachable;

impl RedisStore {
    /// `url` was checked by the configuration. Nothing connects yet: the
    /// service starts whether or not Redis is up.
    pub fn new(url: &str, prefix: &str) -> Result<RedisStore, redis::RedisError> {
        Ok(RedisStore {
            client: redis::Client::open(url)?,
            prefix: prefix.to_owned(),
            script: redis::Script::new(GCRA_SCRIPT),
            connection: tokio::sync::Mutex::new(None),
            outage: Mutex::new(None),
        })
    }

    pub async fn check(&self, key: &str, rate: Rate) -> Result<Verdict, Unreachable> {
        if self.in_outage() {
            return Err(Unreachable);
        }
        match tokio::time::timeout(TIMEOUT, self.run(key, rate)).await {
            Ok(Ok(verdict)) => {
                self.recovered();
                Ok(verdict)
            }
            Ok(Err(e)) => {
                self.failed(&e.to_string()).await;
                Err(Unreachable)
            }
            Err(_) => {
                self.failed("no answer in time").await;
                Err(Unreachable)
            }
        }
    }

    async fn run(&self, key: &str, rate: Rate) -> Result<Verdict, redis::RedisError> {
        let mut connection = {
            let mut slot = self.connection.lock().await;
            match slot.as_ref() {
                Some(connection) => connection.clone(),
                None => {
                    let connection = self.client.get_multiplexed_async_connection().await?;
                    *slot = Some(connection.clone());
                    connection
                }
            }
        };
        let (window, interval) = gcra::micros(rate);
        let (allowed, value): (i64, i64) = self
            .script
            .key(format!("{}{key}", self.prefix))
            .arg(window)
            .arg(interval)
            .invoke_async(&mut connection)
            .await?;
        let value = u64::try_from(value).unwrap_or(0);
        Ok(if allowed == 1 {
            Verdict::Allowed { remaining: u32::try_from(value).unwrap_or(u32::MAX) }
        } else {
            Verdict::Limited { retry_after: Duration::from_micros(value) }
        })
    }

    fn in_outage(&self) -> bool {
        let outage = self.outage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        outage.is_some_and(|since| since.elapsed() < RETRY_AFTER_OUTAGE)
    }

    async fn failed(&self, reason: &str) {
        // A broken connection is not reused; the next try makes a new one.
        *self.connection.lock().await = None;
        let mut outage = self.outage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if outage.is_none() {
            tracing::warn!(
                reason,
                "Redis (SEKISHO_REDIS_URL) is unreachable: rate limits are counted per replica until it is back"
            );
        }
        *outage = Some(Instant::now());
    }

    fn recovered(&self) {
        let mut outage = self.outage.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if outage.take().is_some() {
            tracing::info!("Redis (SEKISHO_REDIS_URL) is reachable again: rate limits are shared across replicas");
        }
    }
}
