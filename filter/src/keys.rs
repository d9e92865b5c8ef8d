//! The set of keys tokens may be signed with, built from the service's JWKS.
//!
//! Keys are parsed once per JWKS change (not per request): each entry keeps the
//! decoded P-256 point ready for verification and its DER form for Envoy's
//! native verifier.

use std::collections::HashMap;

use p256::ecdsa::VerifyingKey;
use sekisho_contract::jwk::{self, Jwks};

#[derive(Debug, Clone)]
pub struct Key {
    pub verifying: VerifyingKey,
    pub spki_der: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct KeySet {
    by_kid: HashMap<String, Key>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("JWKS is not valid JSON")]
    NotJson,
    #[error("JWKS holds no usable ES256 key")]
    NoUsableKey,
}

/// Largest number of keys kept from one JWKS; ours has three.
const MAX_KEYS: usize = 32;

impl KeySet {
    /// Keys other than ES256 signing keys with a `kid` are skipped; a JWKS with
    /// none left is an error, so the caller keeps its last good set.
    pub fn from_jwks(json: &[u8]) -> Result<KeySet, KeySetError> {
        let jwks: Jwks = serde_json::from_slice(json).map_err(|_| KeySetError::NotJson)?;
        let mut by_kid = HashMap::new();
        for jwk in jwks.keys.iter().take(MAX_KEYS) {
            let (Some(kid), Ok(verifying)) = (jwk.kid.as_ref(), jwk.verifying_key()) else {
                continue;
            };
            let spki_der = jwk::spki_der(&verifying);
            by_kid.insert(kid.clone(), Key { verifying, spki_der });
        }
        if by_kid.is_empty() {
            return Err(KeySetError::NoUsableKey);
        }
        Ok(KeySet { by_kid })
    }

    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.by_kid.get(kid)
    }

    pub fn len(&self) -> usize {
        self.by_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use sekisho_contract::jwk::Jwk;

    #[test]
    fn keeps_es256_keys_and_skips_the_rest() {
        let key = SigningKey::from_slice(&[1u8; 32]).unwrap();
        let good = Jwk::es256(key.verifying_key());
        let mut rsa = good.clone();
        rsa.kty = "RSA".into();
        rsa.kid = Some("rsa".into());
        let mut no_kid = good.clone();
        no_kid.kid = None;
        let json = serde_json::to_vec(&Jwks { keys: vec![rsa, no_kid, good.clone()] }).unwrap();
        let set = KeySet::from_jwks(&json).unwrap();
        assert_eq!(set.len(), 1);
        assert!(set.get(good.kid.as_deref().unwrap()).is_some());
        assert!(set.get("rsa").is_none());
    }

    #[test]
    fn garbage_or_empty_jwks_is_an_error() {
        assert_eq!(KeySet::from_jwks(b"<html>").err(), Some(KeySetError::NotJson));
        assert_eq!(KeySet::from_jwks(br#"{"keys":[]}"#).err(), Some(KeySetError::NoUsableKey));
        assert_eq!(KeySet::from_jwks(br#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#).err(), Some(KeySetError::NoUsableKey));
    }
}
