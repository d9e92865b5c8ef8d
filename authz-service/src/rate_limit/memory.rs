//! The in-process store: one TAT per key in a bounded table. It is the store
//! of a single replica, and every replica's fallback while Redis is away.
//!
//! The table never holds more than its bound. When it is full, keys whose TAT
//! has passed are dropped first: such a key is back to a full burst, exactly
//! as if it had never been seen, so dropping it changes no answer. Only if
//! every key is active (an attacker spraying addresses) is the key closest to
//! idle among a sample evicted, which at worst gives that key a fresh burst.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::rate_limit::gcra::{self, Verdict};
use crate::rate_limit::policy::Rate;

/// How many keys are looked at to pick one to evict when none is idle.
const EVICTION_SAMPLE: usize = 32;
/// Full sweeps for idle keys happen at most this often (microseconds), so a
/// table full of active keys does not cost a full scan per request.
const SWEEP_EVERY_MICROS: u64 = 1_000_000;

pub struct MemoryStore {
    max_keys: usize,
    epoch: Instant,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    tats: HashMap<String, u64>,
    last_sweep: Option<u64>,
}

impl MemoryStore {
    pub fn new(max_keys: usize) -> MemoryStore {
        MemoryStore { max_keys: max_keys.max(1), epoch: Instant::now(), table: Mutex::new(Table::default()) }
    }

    pub fn check(&self, key: &str, rate: Rate) -> Verdict {
        let now = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        // A poisoned lock only means another request panicked mid-update; the
        // table of numbers is still usable.
        let mut table = self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tat = table.tats.get(key).copied();
        let (verdict, new_tat) = gcra::step(rate, tat, now);
        if let Some(new_tat) = new_tat.filter(|t| Some(*t) != tat) {
            if tat.is_none() && table.tats.len() >= self.max_keys {
                table.make_room(self.max_keys, now);
            }
            table.tats.insert(key.to_owned(), new_tat);
        }
        verdict
    }

    /// Keys held now (tests and diagnostics).
    pub fn len(&self) -> usize {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).tats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Table {
    fn make_room(&mut self, max_keys: usize, now: u64) {
        if self.last_sweep.is_none_or(|last| now.saturating_sub(last) >= SWEEP_EVERY_MICROS) {
            self.last_sweep = Some(now);
            self.tats.retain(|_, tat| *tat > now);
        }
        while self.tats.len() >= max_keys {
            let victim = self.tats.iter().take(EVICTION_SAMPLE).min_by_key(|(_, tat)| **tat).map(|(k, _)| k.clone());
            match victim {
                Some(key) => self.tats.remove(&key),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_table_never_grows_past_its_bound() {
        let store = MemoryStore::new(16);
        let rate = Rate { count: 2, window: Duration::from_secs(3600) };
        for i in 0..1000 {
            assert!(matches!(store.check(&format!("ip:{i}"), rate), Verdict::Allowed { .. }));
            assert!(store.len() <= 16);
        }
        assert_eq!(store.len(), 16);
    }

    #[test]
    fn idle_keys_go_first_and_active_keys_keep_their_state() {
        let store = MemoryStore::new(16);
        let quick = Rate { count: 1000, window: Duration::from_secs(1) };
        let slow = Rate { count: 1, window: Duration::from_secs(3600) };
        assert!(matches!(store.check("active", slow), Verdict::Allowed { .. }));
        for i in 0..15 {
            store.check(&format!("idle:{i}"), quick);
        }
        std::thread::sleep(Duration::from_millis(20));
        for i in 0..15 {
            store.check(&format!("new:{i}"), quick);
        }
        assert!(store.len() <= 16);
        assert!(matches!(store.check("active", slow), Verdict::Limited { .. }), "the active key was evicted");
    }
}
