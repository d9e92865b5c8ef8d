//! Field-level encryption of secrets at rest that must be recoverable: signing
//! keys, user email and profile, the secrets of logins in flight at the
//! upstream provider, the key of the secret hashes (SPEC S2).
//!
//! Values are sealed with AES-256-GCM under a key from a [`KeyProvider`] and
//! stored as text: `v1:{key id}:{base64url(nonce ‖ ciphertext ‖ tag)}`. The key id
//! lets the master key be rotated (old values stay readable while the provider
//! still knows their key; `crate::crypto::reencrypt` re-seals them). The
//! caller's `context` (`{table}.{field}:{row id}`) is the associated data, so a
//! sealed value copied into another row does not open.
//!
//! Secrets we only need to *check* (client secrets, refresh tokens, API keys) are
//! hashed, not encrypted; that is not this module.

use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Nonce, Payload};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::key_provider::KeyProvider;
use crate::crypto::master_key::MasterKey;
use crate::crypto::random;

const FORMAT_V1: &str = "v1";
const NONCE_BYTES: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("stored value is not in a known sealed format")]
    Malformed,
    #[error(
        "stored value was sealed with master key {0}, which is not configured (wrong SEKISHO_MASTER_KEY, or missing from SEKISHO_MASTER_KEYS_PREVIOUS?)"
    )]
    UnknownKey(String),
    #[error("stored value does not open: tampered, or moved from another record")]
    Tampered,
    #[error(transparent)]
    Random(#[from] random::RandomError),
}

/// Seals and opens fields with the keys of a [`KeyProvider`]. Cheap to clone.
#[derive(Clone)]
pub struct FieldCipher {
    provider: Arc<dyn KeyProvider>,
}

impl FieldCipher {
    pub fn new(provider: Arc<dyn KeyProvider>) -> Self {
        Self { provider }
    }

    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, FieldError> {
        let key = self.provider.current();
        let nonce_bytes = random::bytes::<NONCE_BYTES>()?;
        let nonce = Nonce::<Aes256Gcm>::from(nonce_bytes);
        let ciphertext = cipher(key)
            .encrypt(&nonce, Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| FieldError::Tampered)?;
        let mut blob = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        blob.extend_from_slice(&nonce_bytes);
        blob.extend_from_slice(&ciphertext);
        Ok(format!("{FORMAT_V1}:{}:{}", key.id(), URL_SAFE_NO_PAD.encode(blob)))
    }

    /// The id of the key new values are sealed with.
    pub fn current_key_id(&self) -> &str {
        self.provider.current().id()
    }

    /// The current key itself, for deriving the first secret-hash key from it.
    pub(crate) fn current_key(&self) -> &MasterKey {
        self.provider.current()
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, FieldError> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(FORMAT_V1), Some(key_id), Some(blob)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(FieldError::Malformed);
        };
        let key = self.provider.find(key_id).ok_or_else(|| FieldError::UnknownKey(key_id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD.decode(blob).map_err(|_| FieldError::Malformed)?;
        if blob.len() < NONCE_BYTES {
            return Err(FieldError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_BYTES);
        let nonce = Nonce::<Aes256Gcm>::try_from(nonce).map_err(|_| FieldError::Malformed)?;
        cipher(key)
            .decrypt(&nonce, Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| FieldError::Tampered)
    }
}

fn cipher(key: &MasterKey) -> Aes256Gcm {
    Aes256Gcm::new(key.bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::crypto::key_provider::LocalKeyProvider;

    fn field_cipher(seed: u8) -> FieldCipher {
        let key = MasterKey::from_slice(&[seed; 32]).unwrap();
        FieldCipher::new(Arc::new(LocalKeyProvider::new(key, Vec::new())))
    }

    #[test]
    fn seals_and_opens_with_a_key_id_prefix() {
        let c = field_cipher(1);
        let sealed = c.seal(b"secret scalar", "signing_keys/k1").unwrap();
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("secret"));
        assert_eq!(c.open(&sealed, "signing_keys/k1").unwrap(), b"secret scalar");
        assert_ne!(sealed, c.seal(b"secret scalar", "signing_keys/k1").unwrap(), "nonces must differ");
    }

    #[test]
    fn refuses_other_contexts_other_keys_and_garbage() {
        let c = field_cipher(1);
        let sealed = c.seal(b"x", "signing_keys/k1").unwrap();
        assert_eq!(c.open(&sealed, "signing_keys/k2"), Err(FieldError::Tampered));
        assert!(matches!(field_cipher(2).open(&sealed, "signing_keys/k1"), Err(FieldError::UnknownKey(_))));
        let rotated = FieldCipher::new(Arc::new(LocalKeyProvider::new(
            MasterKey::from_slice(&[2; 32]).unwrap(),
            vec![MasterKey::from_slice(&[1; 32]).unwrap()],
        )));
        assert_eq!(rotated.open(&sealed, "signing_keys/k1").unwrap(), b"x", "a previous key still opens");
        assert!(rotated.seal(b"x", "c").unwrap().starts_with(&format!("v1:{}:", rotated.current_key_id())));
        for garbage in ["", "v1", "v2:a:b", "v1:a", &sealed[..sealed.len() - 2]] {
            assert!(c.open(garbage, "signing_keys/k1").is_err(), "{garbage}");
        }
    }
}
