//! Re-reads the stored keys every few seconds (`SEKISHO_KEY_RELOAD_SECS`), so a
//! rotation made by the CLI or by another replica reaches this process without
//! a restart. A failed read keeps the last good key ring.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::crypto::field::FieldCipher;
use crate::keys::{KeySource, KeyStore, stored};
use crate::storage::Db;

/// Starts the reload loop; `None` when keys come from the environment (nothing to reload).
pub fn spawn(db: Db, cipher: FieldCipher, keys: KeyStore, every: Duration) -> Option<JoinHandle<()>> {
    if keys.current().source() == KeySource::Environment {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            reload_once(&db, &cipher, &keys).await;
        }
    }))
}

/// One reload; `true` when the key ring changed.
pub async fn reload_once(db: &Db, cipher: &FieldCipher, keys: &KeyStore) -> bool {
    match stored::load_if_changed(db, cipher, &keys.current()).await {
        Ok(Some(ring)) => {
            tracing::info!(kid = ring.signer().kid(), "signing keys changed in the database; reloaded");
            keys.replace(ring);
            true
        }
        Ok(None) => false,
        Err(e) => {
            tracing::warn!(error = %e, "could not reload signing keys; keeping the current ones");
            false
        }
    }
}
