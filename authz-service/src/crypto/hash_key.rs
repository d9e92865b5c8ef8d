//! The key the secret hashes are made with (`crate::crypto::secret_hash`), and
//! why it is not simply the master key.
//!
//! A hash of an API key, client secret or refresh token can never be made
//! again: we handed the secret out and kept only the hash. If the hash key
//! changed with the master key, a master key rotation would invalidate every
//! one of them. So the hash key is its own secret: derived once from the
//! master key of the day (the derivation older databases already used, so
//! their hashes stay valid), then stored sealed under the master key, where
//! `keys reencrypt` re-seals it like any other field.

use zeroize::Zeroizing;

use crate::crypto::field::{FieldCipher, FieldError};
use crate::crypto::secret_hash::{HASH_KEY_BYTES, SecretHasher};
use crate::storage::{Db, hash_keys};
use crate::time::now_unix;

#[derive(Debug, thiserror::Error)]
pub enum HashKeyError {
    #[error("cannot read or store the secret-hash key: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot open the secret-hash key: {0}")]
    Sealed(#[from] FieldError),
    #[error("the stored secret-hash key is not {HASH_KEY_BYTES} bytes")]
    Malformed,
}

/// The associated data of the sealed hash key `id`.
pub fn seal_context(id: &str) -> String {
    format!("hash_keys.sealed_key:{id}")
}

/// The stored hash key, stored first if the database has none.
pub async fn load_or_create(db: &Db, cipher: &FieldCipher) -> Result<SecretHasher, HashKeyError> {
    if hash_keys::first(db.pool()).await?.is_none() {
        let derived = SecretHasher::new(cipher.current_key());
        let sealed = cipher.seal(derived.key_bytes(), &seal_context(derived.key_id()))?;
        let mut tx = db.begin().await?;
        hash_keys::insert_if_absent(&mut tx, derived.key_id(), &sealed, now_unix()).await?;
        tx.commit().await?;
    }
    let (id, sealed) = hash_keys::first(db.pool()).await?.ok_or(HashKeyError::Malformed)?;
    let bytes = Zeroizing::new(cipher.open(&sealed, &seal_context(&id))?);
    let key: [u8; HASH_KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| HashKeyError::Malformed)?;
    Ok(SecretHasher::from_key(id, Zeroizing::new(key)))
}
