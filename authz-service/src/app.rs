//! The opened service: configuration, database, field cipher and signing keys.
//! The HTTP handlers get it as axum state; CLI commands open the same thing, so
//! both act on the data in the same way.

use std::sync::Arc;

use anyhow::Context;

use crate::api_keys::Activity;
use crate::audit::Actor;
use crate::audit_journal::Journal;
use crate::clients::cimd;
use crate::config::Config;
use crate::crypto::field::FieldCipher;
use crate::crypto::secret_hash::SecretHasher;
use crate::crypto::{hash_key, key_provider};
use crate::error::{Error, Result};
use crate::keys::stored::{self, Rotation, RotationPolicy};
use crate::keys::{self, KeySource, KeyStore};
use crate::login::{self, IdentityProvider};
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::storage::Db;

/// Everything a request handler needs. Cloned for every request (axum's
/// `State`, the middleware), so it is one reference count, not one per part.
#[derive(Clone)]
pub struct App(Arc<Parts>);

impl std::ops::Deref for App {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

pub struct Parts {
    pub config: Arc<Config>,
    pub db: Db,
    /// Audit events with no other change to commit with, written many per
    /// transaction (see `audit_journal`).
    pub journal: Journal,
    pub cipher: FieldCipher,
    pub keys: KeyStore,
    /// Keyed hashes of the secrets we only need to recognise (API keys, client secrets, …).
    pub hasher: SecretHasher,
    /// API key use and refusals not yet written (see `api_keys::activity`).
    pub api_key_activity: Activity,
    /// How users log in at the authorization endpoint; `None` when no login
    /// method is configured (the endpoint then refuses).
    pub login: Option<Arc<dyn IdentityProvider>>,
    /// Fetches and caches Client ID Metadata Documents.
    pub cimd: Arc<cimd::Resolver>,
    /// The Prometheus metrics of this service (`GET /metrics`).
    pub metrics: Metrics,
    /// Per-IP and per-client request budgets (in process, or shared in Redis).
    pub rate_limits: RateLimits,
}

impl App {
    /// Resolves the master key, connects, applies migrations and loads (or
    /// creates) the signing keys. `actor` is recorded if keys are created.
    pub async fn open(config: Config, actor: &Actor) -> anyhow::Result<App> {
        let cipher = FieldCipher::new(key_provider::from_config(&config)?);
        let db = connect_and_migrate(&config).await?;
        let hasher = hash_key::load_or_create(&db, &cipher).await?;
        let keys = keys::open(&config, &db, &cipher, actor).await.context("cannot load the signing keys")?;
        let login = login::from_config(&config)?;
        let cimd = Arc::new(cimd::Resolver::new(&config.oauth)?);
        let metrics = Metrics::new();
        let rate_limits = RateLimits::new(&config.rate_limits, metrics.clone())?;
        if let Some(oidc) = &config.oidc {
            metrics.breaker_state(oidc.provider, login::oidc::breaker::State::Closed);
        }
        Ok(App(Arc::new(Parts {
            config: Arc::new(config),
            journal: Journal::start(db.clone()),
            db,
            cipher,
            keys,
            hasher,
            api_key_activity: Activity::default(),
            login,
            cimd,
            metrics,
            rate_limits,
        })))
    }

    /// `PUBLIC_BASE_URL`, byte-exact.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Rotates the stored signing keys and starts signing with the new current key.
    pub async fn rotate_keys(&self, actor: &Actor, force: bool) -> Result<Rotation> {
        if self.keys.current().source() == KeySource::Environment {
            return Err(Error::conflict(
                "the signing key comes from JWT_PRIVATE_KEY; rotate it by changing JWT_PRIVATE_KEY and JWT_PUBLIC_KEY",
            ));
        }
        let reload_lag = i64::try_from(self.config.key_reload_interval.as_secs()).unwrap_or(i64::MAX);
        let policy =
            RotationPolicy { min_previous_age: self.config.access_token_ttl.saturating_add(reload_lag), force };
        let rotation = stored::rotate(&self.db, &self.cipher, actor, policy).await?;
        keys::reload::reload_once(&self.db, &self.cipher, &self.keys).await;
        Ok(rotation)
    }
}

/// Connects to `DATABASE_URL` and applies the migrations of its backend.
pub async fn connect_and_migrate(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url, config.database_kind)
        .await
        .context("cannot connect to the database (DATABASE_URL)")?;
    db.migrate().await.context("cannot apply database migrations")?;
    Ok(db)
}
