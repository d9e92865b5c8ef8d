//! Keyed hashes of the high-entropy secrets we generate and later only need to
//! recognise: API keys, client secrets, refresh tokens, authorization codes,
//! registration access tokens (SPEC S3).
//!
//! HMAC-SHA-256 under the hash key (`crate::crypto::hash_key`: first derived
//! from the master key, then kept in the database sealed under it, so rotating
//! the master key leaves every stored hash valid): a hash is not reversible,
//! and a copy of the database alone is not enough to test guesses offline. Each kind of secret hashes under its own [`Purpose`], so a secret of
//! one kind never matches a stored hash of another.
//!
//! Stored form: `v1:{hash key id}:{base64url(HMAC)}`. It is deterministic, so
//! a secret can be found by its hash through a unique index; that is safe
//! because the secrets are random, not chosen. Where a hash is compared rather
//! than looked up (a client secret found by `client_id`), use
//! [`SecretHasher::matches`], which compares in constant time. The hash key id
//! (the id of the master key it was first derived from) makes a hash made
//! under another key recognisable as such.
//!
//! Not for anything a human chose (a password): that needs a slow hash (Argon2id).

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::crypto::compare::secrets_equal;
use crate::crypto::master_key::MasterKey;

type HmacSha256 = Hmac<Sha256>;

const FORMAT_V1: &str = "v1";
/// Separates the hashing key from every other use of the master key.
const DERIVATION_LABEL: &[u8] = b"sekisho secret-hash key v1";

/// What kind of secret is hashed: part of the hashed message, so equal secrets
/// of different kinds hash differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purpose(&'static str);

impl Purpose {
    pub const API_KEY: Purpose = Purpose("api_key");
    pub const CLIENT_SECRET: Purpose = Purpose("client_secret");
    pub const REFRESH_TOKEN: Purpose = Purpose("refresh_token");
    pub const AUTHORIZATION_CODE: Purpose = Purpose("authorization_code");
    pub const REGISTRATION_ACCESS_TOKEN: Purpose = Purpose("registration_access_token");
    /// The cookie that ties a pending authorization request to one browser.
    pub const BROWSER_BINDING: Purpose = Purpose("browser_binding");
    /// The CSRF token of the consent form.
    pub const CONSENT_CSRF: Purpose = Purpose("consent_csrf");
    /// Our `state` toward the upstream OpenID provider.
    pub const OIDC_STATE: Purpose = Purpose("oidc_state");
}

/// Hashes secrets under one hash key. Cheap to clone; `Debug` shows only the key id.
#[derive(Clone)]
pub struct SecretHasher {
    inner: Arc<Inner>,
}

struct Inner {
    key_id: String,
    key: Zeroizing<[u8; HASH_KEY_BYTES]>,
}

pub const HASH_KEY_BYTES: usize = 32;

impl SecretHasher {
    /// The hasher of a database's first hash key: derived from `master_key` and
    /// named by its id.
    pub fn new(master_key: &MasterKey) -> SecretHasher {
        SecretHasher::from_key(master_key.id().to_owned(), derive_key(master_key))
    }

    pub fn from_key(key_id: String, key: Zeroizing<[u8; HASH_KEY_BYTES]>) -> SecretHasher {
        SecretHasher { inner: Arc::new(Inner { key_id, key }) }
    }

    pub fn key_id(&self) -> &str {
        &self.inner.key_id
    }

    pub(crate) fn key_bytes(&self) -> &[u8; HASH_KEY_BYTES] {
        &self.inner.key
    }

    /// The stored form of `secret`.
    pub fn hash(&self, purpose: Purpose, secret: &str) -> String {
        let mut mac = new_mac(self.inner.key.as_slice());
        mac.update(purpose.0.as_bytes());
        // The purpose labels never contain NUL, so (purpose, secret) pairs
        // cannot run into one another.
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!("{FORMAT_V1}:{}:{}", self.inner.key_id, URL_SAFE_NO_PAD.encode(digest))
    }

    /// Whether `secret` is the one `stored` was made from, in constant time.
    pub fn matches(&self, purpose: Purpose, secret: &str, stored: &str) -> bool {
        secrets_equal(self.hash(purpose, secret).as_bytes(), stored.as_bytes())
    }
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretHasher").field("key_id", &self.inner.key_id).finish_non_exhaustive()
    }
}

/// The hash key derived from a master key, as every database's first hash key is.
fn derive_key(master_key: &MasterKey) -> Zeroizing<[u8; HASH_KEY_BYTES]> {
    let mut mac = new_mac(master_key.bytes());
    mac.update(DERIVATION_LABEL);
    Zeroizing::new(mac.finalize().into_bytes().into())
}

fn new_mac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(seed: u8) -> SecretHasher {
        SecretHasher::new(&MasterKey::from_slice(&[seed; 32]).unwrap())
    }

    #[test]
    fn hashes_are_deterministic_and_carry_the_master_key_id() {
        let h = hasher(1);
        let a = h.hash(Purpose::API_KEY, "sek_secret");
        assert_eq!(a, h.hash(Purpose::API_KEY, "sek_secret"));
        let id = MasterKey::from_slice(&[1; 32]).unwrap().id().to_owned();
        assert!(a.starts_with(&format!("v1:{id}:")), "{a}");
        assert!(!a.contains("secret"));
        // 32 bytes of HMAC, base64url without padding.
        assert_eq!(a.rsplit(':').next().unwrap().len(), 43);
    }

    #[test]
    fn purpose_secret_and_master_key_all_change_the_hash() {
        let h = hasher(1);
        let base = h.hash(Purpose::API_KEY, "s");
        assert_ne!(base, h.hash(Purpose::CLIENT_SECRET, "s"));
        assert_ne!(base, h.hash(Purpose::API_KEY, "t"));
        assert_ne!(base, hasher(2).hash(Purpose::API_KEY, "s"));
    }

    #[test]
    fn is_hmac_sha256_under_the_derived_key() {
        // RFC 4231 test case 2, through the same HMAC the hasher uses.
        let mut mac = new_mac(b"Jefe");
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn matches_only_the_right_secret() {
        let h = hasher(3);
        let stored = h.hash(Purpose::CLIENT_SECRET, "right");
        assert!(h.matches(Purpose::CLIENT_SECRET, "right", &stored));
        assert!(!h.matches(Purpose::CLIENT_SECRET, "wrong", &stored));
        assert!(!h.matches(Purpose::REFRESH_TOKEN, "right", &stored));
        assert!(!hasher(4).matches(Purpose::CLIENT_SECRET, "right", &stored));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let shown = format!("{:?}", hasher(5));
        assert!(shown.contains("key_id") && !shown.contains("key:"));
    }
}
