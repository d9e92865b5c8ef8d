//! API key verdicts shared by the worker VMs of one Envoy, in a fixed number of
//! shared-data slots (a direct-mapped cache: bounded, no eviction bookkeeping).
//!
//! A slot holds the SHA-256 of the key (never the key), the time the verdict
//! may be used until, and the service's answer as it came. A colliding key
//! simply overwrites the slot; the worst that does is one more lookup.

use sha2::{Digest, Sha256};

pub const SLOTS: u32 = 4096;
const HEADER: usize = 32 + 8;

/// The slot name and the digest that identifies `key` in it.
pub fn slot_of(key: &str) -> (String, [u8; 32]) {
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let n = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % SLOTS;
    (format!("sekisho.ak.{n}"), digest)
}

pub fn encode(digest: &[u8; 32], valid_until: i64, answer: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + answer.len());
    out.extend_from_slice(digest);
    out.extend_from_slice(&valid_until.to_le_bytes());
    out.extend_from_slice(answer);
    out
}

/// The stored answer, if the slot holds this key's verdict and it is still usable.
pub fn decode<'a>(slot: &'a [u8], digest: &[u8; 32], now: i64) -> Option<(&'a [u8], i64)> {
    if slot.len() < HEADER || &slot[..32] != digest {
        return None;
    }
    let valid_until = i64::from_le_bytes(slot[32..HEADER].try_into().ok()?);
    (now < valid_until).then_some((&slot[HEADER..], valid_until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_answers_only_for_its_key_and_only_until_it_expires() {
        let (name, digest) = slot_of("sek_a");
        assert!(name.starts_with("sekisho.ak."));
        let stored = encode(&digest, 100, b"{}");
        assert_eq!(decode(&stored, &digest, 99), Some((&b"{}"[..], 100)));
        assert_eq!(decode(&stored, &digest, 100), None);
        let (_, other) = slot_of("sek_b");
        assert_eq!(decode(&stored, &other, 0), None);
        assert_eq!(decode(&stored[..10], &digest, 0), None);
    }

    #[test]
    fn slots_stay_within_the_bound() {
        for i in 0..1000 {
            let (name, _) = slot_of(&format!("sek_{i}"));
            let n: u32 = name.trim_start_matches("sekisho.ak.").parse().unwrap();
            assert!(n < SLOTS);
        }
    }
}
