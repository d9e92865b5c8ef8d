//! A bounded cache of verified credentials, so a token or key already seen costs
//! a hash lookup instead of a signature check (SPEC F8).
//!
//! Entries are keyed by a SipHash of the credential under a per-process random
//! key, and confirmed by the credential's length and last bytes, so neither a
//! collision nor a guess can borrow another caller's entry. Each entry carries
//! the time after which it must not be used (`exp` for a token, the revocation
//! bound for a key). When full, the oldest entry goes first.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;

const FINGERPRINT: usize = 24;

struct Slot<V> {
    len: usize,
    tail: [u8; FINGERPRINT],
    valid_until: i64,
    value: V,
}

pub struct CredentialCache<V> {
    capacity: usize,
    hasher: RandomState,
    map: HashMap<u64, Slot<V>>,
    /// Insertion order for eviction; may hold keys already removed.
    order: VecDeque<u64>,
}

fn tail(credential: &str) -> [u8; FINGERPRINT] {
    let bytes = credential.as_bytes();
    let mut out = [0u8; FINGERPRINT];
    let n = bytes.len().min(FINGERPRINT);
    out[..n].copy_from_slice(&bytes[bytes.len() - n..]);
    out
}

impl<V> CredentialCache<V> {
    pub fn new(capacity: usize) -> Self {
        CredentialCache {
            capacity: capacity.max(1),
            hasher: RandomState::new(),
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn get(&mut self, credential: &str, now: i64) -> Option<&V> {
        let key = self.hasher.hash_one(credential);
        let slot = self.map.get(&key)?;
        if slot.len != credential.len() || slot.tail != tail(credential) {
            return None;
        }
        if now >= slot.valid_until {
            self.map.remove(&key);
            return None;
        }
        self.map.get(&key).map(|s| &s.value)
    }

    pub fn insert(&mut self, credential: &str, value: V, valid_until: i64) {
        let key = self.hasher.hash_one(credential);
        while self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        let slot = Slot { len: credential.len(), tail: tail(credential), valid_until, value };
        if self.map.insert(key, slot).is_none() {
            self.order.push_back(key);
        }
        if self.order.len() > 2 * self.capacity {
            let map = &self.map;
            self.order.retain(|k| map.contains_key(k));
        }
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_what_was_stored_until_it_expires() {
        let mut c = CredentialCache::new(10);
        c.insert("token-a", 1, 100);
        assert_eq!(c.get("token-a", 99), Some(&1));
        assert_eq!(c.get("token-b", 99), None);
        assert_eq!(c.get("token-a", 100), None);
        assert!(c.is_empty());
    }

    #[test]
    fn never_grows_past_its_capacity() {
        let mut c = CredentialCache::new(100);
        for i in 0..10_000 {
            c.insert(&format!("token-{i}"), i, i64::MAX);
            assert!(c.len() <= 100);
        }
        assert_eq!(c.len(), 100);
        assert!(c.order.len() <= 200);
        // The newest survive, the oldest went first.
        assert_eq!(c.get("token-9999", 0), Some(&9999));
        assert_eq!(c.get("token-0", 0), None);
    }

    #[test]
    fn reinserting_refreshes_the_value_without_duplicating() {
        let mut c = CredentialCache::new(2);
        c.insert("a", 1, 10);
        c.insert("a", 2, 20);
        c.insert("b", 3, 20);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a", 15), Some(&2));
    }
}
