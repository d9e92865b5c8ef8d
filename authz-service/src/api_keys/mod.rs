//! API keys (SPEC K): long-lived credentials for MCP clients that predate
//! OAuth, each bound to one or more instances and a set of scopes.
//!
//! - [`lifecycle`]: create, list, show, revoke and rotate keys, for the admin
//!   API and the CLI; every change is audited in its own transaction.
//! - [`verify`]: the service's answer to the filter's question "is this key
//!   valid, and for what?" (`sekisho_contract::api_key::VerifyResponse`).
//! - [`activity`]: usage and refusals, gathered in memory and written in
//!   batches, so verifying never writes to the database.
//! - [`settings`]: the revocation bound and the flush interval.
//!
//! A key is `sek_` + 40 random base62 characters + a 6-character checksum
//! (`sekisho_contract::api_key`). The plaintext is returned once, at creation
//! or rotation, and never stored: the database holds only its keyed hash
//! (`crate::crypto::secret_hash`, purpose `api_key`) and its display prefix.
//!
//! How a key is checked: the filter refuses malformed keys itself. A
//! well-formed key it has not seen it sends to [`verify`] once, and caches the
//! answer — valid or not — for `cache_seconds` (`SEKISHO_API_KEY_CACHE_SECONDS`,
//! default 30, never beyond the key's expiry). That is the revocation bound,
//! and why guessing keys cannot flood the service.
//!
//! Keys are never deleted, only revoked, so audit rows and usage keep pointing
//! at a record. A revocation may be scheduled (a rotation's grace period):
//! `revoked_at` in the future means "still valid until then".

pub mod activity;
pub mod lifecycle;
pub mod settings;
mod validate;
pub mod verify;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::storage::api_keys::ApiKeyRow;

pub use activity::Activity;
pub use lifecycle::{create, get, list, revoke, rotate};
pub use settings::ApiKeySettings;

/// Longest rotation grace period: long enough to roll a new key out, short
/// enough that a leaked key does not stay useful for long.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;
/// Longest lifetime a key may be given (`expires_in`), ten years.
pub const MAX_LIFETIME_SECONDS: i64 = 10 * 365 * 24 * 3600;

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Expired,
    Revoked,
}

impl Status {
    /// A revocation wins over expiry; both take effect at their second.
    pub fn at(now: i64, expires_at: Option<i64>, revoked_at: Option<i64>) -> Status {
        if revoked_at.is_some_and(|t| t <= now) {
            Status::Revoked
        } else if expires_at.is_some_and(|t| t <= now) {
            Status::Expired
        } else {
            Status::Active
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }
}

/// A key as the admin API and the CLI show it: never the key, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub display_prefix: String,
    pub instances: Vec<String>,
    pub scope: String,
    /// At the time of reading.
    pub status: Status,
    pub created_at: i64,
    pub created_by: String,
    pub expires_at: Option<i64>,
    /// In the future while a rotation's grace period runs.
    pub revoked_at: Option<i64>,
    /// As of the last usage flush (see [`activity`]).
    pub last_used_at: Option<i64>,
    pub use_count: i64,
    /// The key this one replaced.
    pub rotated_from: Option<String>,
}

impl ApiKeyInfo {
    fn from_row(row: ApiKeyRow, now: i64) -> Result<ApiKeyInfo> {
        Ok(ApiKeyInfo {
            instances: instances_of(&row)?,
            status: Status::at(now, row.expires_at, row.revoked_at),
            id: row.id,
            name: row.name,
            display_prefix: row.display_prefix,
            scope: row.scope,
            created_at: row.created_at,
            created_by: row.created_by,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
            use_count: row.use_count,
            rotated_from: row.rotated_from,
        })
    }
}

/// A key just made: the plaintext, to be shown once, and its record.
/// `Debug` leaves the plaintext out.
#[derive(Clone)]
pub struct CreatedApiKey {
    pub api_key: String,
    pub info: ApiKeyInfo,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey").field("info", &self.info).finish_non_exhaustive()
    }
}

/// The settings of a new key as an operator gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeySpec {
    pub name: String,
    pub instances: Vec<String>,
    /// Space-separated scopes.
    pub scope: String,
    pub expiry: Expiry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Never,
    /// Seconds from creation.
    After(i64),
    /// Unix seconds.
    At(i64),
}

/// The stored instance list; written by us, so anything else is corruption.
fn instances_of(row: &ApiKeyRow) -> Result<Vec<String>> {
    serde_json::from_str(&row.instances).map_err(|_| {
        Error::internal(anyhow::anyhow!("API key {}: stored instances are not a JSON array of strings", row.id))
    })
}

#[cfg(test)]
mod tests {
    use super::Status;

    #[test]
    fn status_takes_effect_at_its_second_and_revocation_wins() {
        assert_eq!(Status::at(100, None, None), Status::Active);
        assert_eq!(Status::at(100, Some(101), Some(101)), Status::Active);
        assert_eq!(Status::at(100, Some(100), None), Status::Expired);
        assert_eq!(Status::at(100, None, Some(100)), Status::Revoked);
        assert_eq!(Status::at(100, Some(50), Some(60)), Status::Revoked);
    }
}
