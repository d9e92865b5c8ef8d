//! Where the field cipher's keys come from (SPEC S2): the [`KeyProvider`]
//! seam, and the default provider that reads them from the environment.
//!
//! A provider knows one *current* key, which seals every new value, and any
//! number of *previous* keys, which only open values sealed before a rotation.
//! Rotation is: make the new key current, list the old one as previous, run
//! `sekisho-authz keys reencrypt`, then drop the old key. A KMS-backed provider
//! implements the same trait; callers only ever see [`KeyProvider`].

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::master_key::{self, MasterKey, MasterKeyError};

/// Supplies the keys that seal and open fields.
///
/// Deliberately synchronous: a KMS-backed provider unwraps its data keys once at
/// start-up (envelope encryption), so sealing a field never waits on the network.
pub trait KeyProvider: Send + Sync {
    /// The key new values are sealed with.
    fn current(&self) -> &MasterKey;
    /// A key by id, current or previous, to open values sealed before a rotation.
    fn find(&self, id: &str) -> Option<&MasterKey>;
}

/// The default provider: `SEKISHO_MASTER_KEY` (or the development key file) as
/// the current key, `SEKISHO_MASTER_KEYS_PREVIOUS` as the previous ones.
pub struct LocalKeyProvider {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl LocalKeyProvider {
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Self {
        // A key listed as both current and previous is simply current.
        let previous = previous.into_iter().filter(|k| k.id() != current.id()).collect();
        Self { current, previous }
    }
}

impl KeyProvider for LocalKeyProvider {
    fn current(&self) -> &MasterKey {
        &self.current
    }

    fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current).chain(&self.previous).find(|k| k.id() == id)
    }
}

/// The provider the configuration describes.
pub fn from_config(config: &Config) -> Result<Arc<dyn KeyProvider>, MasterKeyError> {
    let current = master_key::resolve(config)?;
    Ok(Arc::new(LocalKeyProvider::new(current, config.previous_master_keys.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> MasterKey {
        MasterKey::from_slice(&[seed; 32]).unwrap()
    }

    #[test]
    fn finds_current_and_previous_keys_and_nothing_else() {
        let provider = LocalKeyProvider::new(key(2), vec![key(1), key(2)]);
        assert_eq!(provider.current().id(), key(2).id());
        assert_eq!(provider.find(key(1).id()).map(MasterKey::id), Some(key(1).id()));
        assert_eq!(provider.find(key(2).id()).map(MasterKey::id), Some(key(2).id()));
        assert!(provider.find(key(3).id()).is_none());
        assert_eq!(provider.previous.len(), 1, "the current key is not also a previous one");
    }
}
