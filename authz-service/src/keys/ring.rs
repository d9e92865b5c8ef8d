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
}

impl Signer {
    pub fn new(key: SigningKey) -> Signer {
        Signer { kid: thumbprint(key.verifying_key()), key }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_jwk(&self) -> Jwk {
        Jwk::es256(self.key.verifying_key())
    }

    /// A compact JWS of `claims` with `typ` and this key's `kid`.
    pub fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, JwsError> {
        jws::sign_es256(claims, typ, &self.kid, &self.key)
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
