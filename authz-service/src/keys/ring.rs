//! The key set in memory: the key that signs, and the public keys published in
//! the JWKS. Swapped as a whole when keys change, so a request never sees a
//! half-updated set.

use std::fmt;
use std::sync::{Arc, RwLock};

use p256::ecdsa::SigningKey;
use sekisho_contract::jwk::{Jwk, Jwks, thumbprint};
use sekisho_contract::jws::{self, JwsError};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `JWT_PRIVATE_KEY`: one key, managed outside the service.
    Environment,
    /// Generated and rotated by the service, stored encrypted.
    Database,
}

/// The key that signs, with its `kid` (RFC 7638 thumbprint). `Debug` shows the kid only.
#[derive(Clone)]
pub struct Signer {
    kid: String,
    key: SigningKey,
    /// The same key in BoringSSL-derived `ring`, which signs several times
    /// faster than the pure-Rust `p256` (signing was a fifth of the token
    /// endpoint's CPU); `None` if ring refuses the key, then `p256` signs.
    fast: Option<Arc<FastSigner>>,
}

struct FastSigner {
    key: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl FastSigner {
    fn new(key: &SigningKey) -> Option<FastSigner> {
        use p256::pkcs8::EncodePrivateKey;
        let der = key.to_pkcs8_der().ok()?;
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.as_bytes(),
            &rng,
        )
        .ok()?;
        Some(FastSigner { key, rng })
    }

    fn sign(&self, signing_input: &[u8]) -> Option<[u8; jws::ES256_SIGNATURE_BYTES]> {
        let signature = self.key.sign(&self.rng, signing_input).ok()?;
        signature.as_ref().try_into().ok()
    }
}

impl Signer {
    pub fn new(key: SigningKey) -> Signer {
        let fast = FastSigner::new(&key).map(Arc::new);
        if fast.is_none() {
            tracing::warn!("signing with the slower p256 implementation: ring did not accept the key");
        }
        Signer { kid: thumbprint(key.verifying_key()), key, fast }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> Jwk {
        Jwk::es256(self.key.verifying_key())
    }

    /// A compact JWS of `claims` with `typ` and this key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, JwsError> {
        match &self.fast {
            Some(fast) => jws::sign_es256_with(claims, typ, &self.kid, |input| fast.sign(input)),
            None => jws::sign_es256(claims, typ, &self.kid, &self.key),
        }
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct KeyRing {
    source: KeySource,
    signer: Signer,
    jwks: Jwks,
    /// `(kid, status)` of the stored keys this ring was built from, to tell
    /// whether the database has changed since.
    fingerprint: Vec<(String, String)>,
}

impl KeyRing {
    pub fn from_env(key: SigningKey) -> KeyRing {
        let signer = Signer::new(key);
        let jwks = Jwks { keys: vec![signer.public_jwk()] };
        KeyRing { source: KeySource::Environment, signer, jwks, fingerprint: Vec::new() }
    }

    pub(crate) fn stored(signer: Signer, jwks: Jwks, fingerprint: Vec<(String, String)>) -> KeyRing {
        KeyRing { source: KeySource::Database, signer, jwks, fingerprint }
    }

    pub fn source(&self) -> KeySource {
        self.source
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Every key a valid token may be signed with, and the next one.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    pub(crate) fn fingerprint(&self) -> &[(String, String)] {
        &self.fingerprint
    }
}

/// The shared, swappable key ring. Cheap to clone.
#[derive(Clone)]
pub struct KeyStore {
    ring: Arc<RwLock<Arc<KeyRing>>>,
}

impl KeyStore {
    pub fn new(ring: KeyRing) -> KeyStore {
        KeyStore { ring: Arc::new(RwLock::new(Arc::new(ring))) }
    }

    pub fn current(&self) -> Arc<KeyRing> {
        // A poisoned lock still holds a complete ring: it is only ever replaced whole.
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, ring: KeyRing) {
        *self.ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens signed by ring must verify with the verifier the filter uses,
    /// and ring must accept the keys the service makes.
    fn generated_key() -> SigningKey {
        loop {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).unwrap();
            if let Ok(key) = SigningKey::from_slice(&seed) {
                return key;
            }
        }
    }

    #[test]
    fn ring_signs_tokens_the_contract_verifies() {
        let key = generated_key();
        let signer = Signer::new(key.clone());
        assert!(signer.fast.is_some(), "ring refused a P-256 key from p256");
        let token = signer.sign(&serde_json::json!({ "sub": "s" }), "at+jwt").unwrap();
        let parsed = jws::parse(&token, 4096, "at+jwt").unwrap();
        parsed.verify_with(key.verifying_key()).unwrap();
        assert_eq!(parsed.kid, signer.kid());
        let other = generated_key();
        assert!(parsed.verify_with(other.verifying_key()).is_err());
    }
}
