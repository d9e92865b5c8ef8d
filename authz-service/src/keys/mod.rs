//! Token signing keys (SPEC A2): ES256 on P-256, published as a JWKS that the
//! Envoy filter fetches.
//!
//! - [`ring`]: the in-memory key set the service signs with and publishes.
//! - [`stored`]: keys we generate, kept encrypted in the database and rotated
//!   `next → current → previous → retired`. A `next` key is always published
//!   before it signs anything, so filters know it by the time it does.
//! - [`env_key`]: a key given in `JWT_PRIVATE_KEY` instead; never stored, never rotated by us.
//! - [`reload`]: picks up rotations made by the CLI or another replica.

pub mod env_key;
pub mod reload;
pub mod ring;
pub mod stored;

pub use ring::{KeyRing, KeySource, KeyStore, Signer};

use crate::audit::Actor;
use crate::config::Config;
use crate::crypto::field::FieldCipher;
use crate::error::Result;
use crate::storage::Db;

/// The key store at start-up: the environment's key, or the stored keys
/// (generated on first use).
pub async fn open(config: &Config, db: &Db, cipher: &FieldCipher, actor: &Actor) -> Result<KeyStore> {
    let ring = match &config.env_signing_key {
        Some(key) => KeyRing::from_env(key.clone()),
        None => {
            stored::ensure(db, cipher, actor).await?;
            stored::load(db, cipher).await?
        }
    };
    Ok(KeyStore::new(ring))
}
