//! Usage and refusals of API keys, gathered in memory and written in batches
//! (SPEC K4: usage is recorded without a write per request).
//!
//! The filter asks [`super::verify`] about a key when it first sees it and
//! again each time its cached answer runs out; every answer is noted here, not
//! in the database. A flush — every `SEKISHO_API_KEY_USAGE_FLUSH_SECS`
//! (default 5) and once more at shutdown — writes, in one transaction:
//!
//! - one `UPDATE` per key used: `use_count += n`, `last_used_at` moved forward;
//! - one `api_key.refused` audit row per refused key and reason (revoked,
//!   expired), with the count, and one per reason for keys that matched
//!   nothing (unknown, malformed), with the count and a few display prefixes.
//!
//! So writes grow with the number of keys, not of requests, and a flood of
//! guesses costs one audit row per flush. The price: `last_used_at` means
//! "last verified", which lags real use by up to the cache bound plus a flush
//! interval, and `use_count` counts verifications, not requests (the filter
//! answers the rest from its cache).
//!
//! A failed flush (database down) puts its batch back for the next one; what
//! is pending is lost only if the process dies without shutting down. Memory
//! stays bounded: one entry per key, one per reason for unmatched keys.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sekisho_contract::api_key::InvalidReason;
use serde_json::json;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::audit::{self, Actor, AuditEvent, EventKind, Outcome};
use crate::error::Result;
use crate::storage::{Db, api_keys};

/// How many display prefixes of unmatched keys one audit row lists.
const MAX_SAMPLES: usize = 10;

/// The recorder shared by every request. Cheap to clone.
#[derive(Clone, Default)]
pub struct Activity {
    pending: Arc<Mutex<Batch>>,
}

#[derive(Debug, Default)]
struct Batch {
    used: HashMap<String, Use>,
    refused: HashMap<Refusal, Refusals>,
}

#[derive(Debug, Clone, Copy)]
struct Use {
    count: i64,
    last_at: i64,
}

/// A refused key by id; keys that matched nothing only by reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Refusal {
    reason: InvalidReason,
    key_id: Option<String>,
}

#[derive(Debug, Clone)]
struct Refusals {
    count: i64,
    first_at: i64,
    last_at: i64,
    display_prefixes: BTreeSet<String>,
}

/// What a flush wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    pub keys_updated: usize,
    pub audit_rows: usize,
}

impl Activity {
    pub fn record_use(&self, key_id: &str, at: i64) {
        self.lock().add_use(key_id, Use { count: 1, last_at: at });
    }

    /// `key_id` for a key we know (revoked, expired); `display_prefix` only
    /// for well-formed keys (a malformed one may be anything, even a password).
    pub fn record_refusal(&self, reason: InvalidReason, key_id: Option<&str>, display_prefix: Option<&str>, at: i64) {
        let refusal = Refusal { reason, key_id: key_id.map(str::to_owned) };
        let refusals = Refusals {
            count: 1,
            first_at: at,
            last_at: at,
            display_prefixes: display_prefix.map(str::to_owned).into_iter().collect(),
        };
        self.lock().add_refusals(refusal, refusals);
    }

    /// Writes everything recorded so far. Not cancellation-safe: dropped
    /// half-way, it loses its batch (the flusher task never drops it).
    pub async fn flush(&self, db: &Db) -> Result<Flushed> {
        let batch = std::mem::take(&mut *self.lock());
        if batch.used.is_empty() && batch.refused.is_empty() {
            return Ok(Flushed::default());
        }
        match write(db, &batch).await {
            Ok(flushed) => Ok(flushed),
            Err(e) => {
                self.lock().merge(batch);
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Batch> {
        // A panic while holding the lock cannot leave a batch half-updated in
        // a way that matters (counts only), so a poisoned lock is still used.
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Batch {
    fn add_use(&mut self, key_id: &str, new: Use) {
        match self.used.get_mut(key_id) {
            Some(u) => {
                u.count += new.count;
                u.last_at = u.last_at.max(new.last_at);
            }
            None => {
                self.used.insert(key_id.to_owned(), new);
            }
        }
    }

    fn add_refusals(&mut self, refusal: Refusal, new: Refusals) {
        let Some(r) = self.refused.get_mut(&refusal) else {
            self.refused.insert(refusal, new);
            return;
        };
        r.count += new.count;
        r.first_at = r.first_at.min(new.first_at);
        r.last_at = r.last_at.max(new.last_at);
        for prefix in new.display_prefixes {
            if r.display_prefixes.len() >= MAX_SAMPLES {
                break;
            }
            r.display_prefixes.insert(prefix);
        }
    }

    fn merge(&mut self, other: Batch) {
        for (key_id, u) in other.used {
            self.add_use(&key_id, u);
        }
        for (refusal, r) in other.refused {
            self.add_refusals(refusal, r);
        }
    }
}

async fn write(db: &Db, batch: &Batch) -> Result<Flushed> {
    let mut tx = db.begin().await?;
    for (key_id, u) in &batch.used {
        api_keys::add_usage(&mut tx, key_id, u.count, u.last_at).await?;
    }
    let filter = Actor { name: "filter".into(), ip: None };
    for (refusal, r) in &batch.refused {
        let mut details = json!({
            "count": r.count,
            "first_at": r.first_at,
            "last_at": r.last_at,
        });
        match &refusal.key_id {
            Some(key_id) => {
                details["key_id"] = json!(key_id);
                details["display_prefix"] = json!(r.display_prefixes.iter().next());
            }
            None => details["display_prefixes"] = json!(r.display_prefixes),
        }
        let event = AuditEvent {
            outcome: Outcome::Failure,
            reason: Some(refusal.reason.as_str().to_owned()),
            ..AuditEvent::success(EventKind::ApiKeyRefused, &filter, details)
        };
        audit::record(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(Flushed { keys_updated: batch.used.len(), audit_rows: batch.refused.len() })
}

/// The background task that flushes every `every`, and once more when stopped.
pub struct Flusher {
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

pub fn spawn(activity: Activity, db: Db, every: Duration) -> Flusher {
    let stop = Arc::new(Notify::new());
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await; // the first tick is immediate; nothing is pending yet
        loop {
            tokio::select! {
                _ = tick.tick() => flush_and_log(&activity, &db).await,
                () = stopped.notified() => break,
            }
        }
        flush_and_log(&activity, &db).await;
    });
    Flusher { stop, task }
}

impl Flusher {
    /// Flushes what is pending and ends the task. Call before closing the pool.
    pub async fn stop(self) {
        // `notify_one` keeps a permit if the task is busy flushing right now.
        self.stop.notify_one();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "API key usage flusher failed");
        }
    }
}

async fn flush_and_log(activity: &Activity, db: &Db) {
    if let Err(e) = activity.flush(db).await {
        tracing::warn!(error = %e, "API key usage not written yet; retrying at the next flush");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(activity: &Activity) -> Batch {
        std::mem::take(&mut *activity.lock())
    }

    #[test]
    fn uses_of_a_key_collapse_into_one_count() {
        let a = Activity::default();
        a.record_use("k1", 10);
        a.record_use("k1", 30);
        a.record_use("k1", 20);
        a.record_use("k2", 5);
        let b = batch_of(&a);
        assert_eq!(b.used.len(), 2);
        assert_eq!((b.used["k1"].count, b.used["k1"].last_at), (3, 30));
    }

    #[test]
    fn unmatched_keys_collapse_by_reason_with_bounded_samples() {
        let a = Activity::default();
        for i in 0..100 {
            let prefix = format!("sek_{i:08}");
            a.record_refusal(InvalidReason::Unknown, None, Some(&prefix), i);
        }
        a.record_refusal(InvalidReason::Malformed, None, None, 7);
        a.record_refusal(InvalidReason::Revoked, Some("k1"), Some("sek_k1k1k1k1"), 8);
        let b = batch_of(&a);
        assert_eq!(b.refused.len(), 3);
        let unknown = &b.refused[&Refusal { reason: InvalidReason::Unknown, key_id: None }];
        assert_eq!((unknown.count, unknown.first_at, unknown.last_at), (100, 0, 99));
        assert_eq!(unknown.display_prefixes.len(), MAX_SAMPLES);
    }

    #[test]
    fn a_batch_put_back_adds_to_what_came_meanwhile() {
        let a = Activity::default();
        a.record_use("k1", 10);
        let failed = batch_of(&a);
        a.record_use("k1", 5);
        a.lock().merge(failed);
        let b = batch_of(&a);
        assert_eq!((b.used["k1"].count, b.used["k1"].last_at), (2, 10));
    }
}
