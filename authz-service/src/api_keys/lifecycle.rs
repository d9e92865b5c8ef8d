//! Creating, reading, revoking and rotating keys: what the admin API and the
//! CLI do, in one place. Each change and its audit row (`api_key.created`,
//! `api_key.revoked`, `api_key.rotated`) commit in one transaction; audit rows
//! carry the key id and display prefix, never the key or its hash.

use sekisho_contract::api_key;
use serde_json::json;

use crate::api_keys::validate::{self, Validated};
use crate::api_keys::{
    ApiKeyInfo, ApiKeySpec, CreatedApiKey, Expiry, MAX_GRACE_SECONDS, MAX_LIFETIME_SECONDS, instances_of,
};
use crate::app::App;
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::crypto::random;
use crate::crypto::secret_hash::{Purpose, SecretHasher};
use crate::error::{Error, Result};
use crate::storage::Db;
use crate::storage::api_keys::{self, ApiKeyRow};
use crate::time::now_unix;

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub new: CreatedApiKey,
    /// The replaced key, with its (possibly future) `revoked_at`.
    pub old: ApiKeyInfo,
}

pub async fn create(app: &App, spec: &ApiKeySpec, actor: &Actor) -> Result<CreatedApiKey> {
    let now = now_unix();
    let valid = validate::spec(&app.db, spec, now).await?;
    let mut tx = app.db.begin().await?;
    let created = insert_new(&mut tx, &app.hasher, &valid, now, actor, None).await?;
    let event = AuditEvent::success(EventKind::ApiKeyCreated, actor, details(&created.info));
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(created)
}

/// Every key, newest first.
pub async fn list(db: &Db) -> Result<Vec<ApiKeyInfo>> {
    let now = now_unix();
    api_keys::list(db.pool()).await?.into_iter().map(|row| ApiKeyInfo::from_row(row, now)).collect()
}

pub async fn get(db: &Db, id: &str) -> Result<ApiKeyInfo> {
    let row = api_keys::get(db.pool(), id).await?.ok_or_else(|| not_found(id))?;
    ApiKeyInfo::from_row(row, now_unix())
}

/// Revokes a key now. Revoking a revoked key changes nothing (and audits
/// nothing); a revocation scheduled by a rotation is brought forward.
pub async fn revoke(db: &Db, id: &str, actor: &Actor) -> Result<ApiKeyInfo> {
    let now = now_unix();
    let mut tx = db.begin().await?;
    let changed = api_keys::revoke(&mut tx, id, now).await?;
    let row = api_keys::get(&mut *tx, id).await?.ok_or_else(|| not_found(id))?;
    let info = ApiKeyInfo::from_row(row, now)?;
    if changed {
        let event = AuditEvent::success(EventKind::ApiKeyRevoked, actor, details(&info));
        audit::record(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(info)
}

/// Replaces a key with a new one of the same name, instances, scope and
/// lifetime (a key that expired a year after creation gets a new year). The
/// old key is revoked `grace_seconds` from now (0: at once), so clients can
/// move over without an outage. A key that is revoked, or already rotated, is
/// not rotated again: `conflict`.
pub async fn rotate(app: &App, id: &str, grace_seconds: i64, actor: &Actor) -> Result<Rotated> {
    if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
        return Err(Error::invalid_request(format!("`grace_seconds` must be between 0 and {MAX_GRACE_SECONDS}")));
    }
    let now = now_unix();
    let old = api_keys::get(app.db.pool(), id).await?.ok_or_else(|| not_found(id))?;
    if old.revoked_at.is_some() {
        return Err(already_revoked(id));
    }
    let expiry = match old.expires_at {
        None => Expiry::Never,
        Some(at) => Expiry::After(at.saturating_sub(old.created_at).clamp(1, MAX_LIFETIME_SECONDS)),
    };
    let spec = ApiKeySpec { name: old.name.clone(), instances: instances_of(&old)?, scope: old.scope.clone(), expiry };
    // The settings are checked again: an instance may have gone since.
    let valid = validate::spec(&app.db, &spec, now).await?;

    let revoke_at = now.saturating_add(grace_seconds);
    let mut tx = app.db.begin().await?;
    // Conditional on no revocation yet: of two concurrent rotations, one wins.
    if !api_keys::schedule_revocation(&mut tx, id, revoke_at).await? {
        return Err(already_revoked(id));
    }
    let new = insert_new(&mut tx, &app.hasher, &valid, now, actor, Some(id)).await?;
    let old = ApiKeyInfo::from_row(ApiKeyRow { revoked_at: Some(revoke_at), ..old }, now)?;
    let mut event_details = details(&new.info);
    event_details["rotated_from"] = json!({
        "key_id": old.id,
        "display_prefix": old.display_prefix,
        "revoked_at": revoke_at,
    });
    event_details["grace_seconds"] = json!(grace_seconds);
    let event = AuditEvent::success(EventKind::ApiKeyRotated, actor, event_details);
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(Rotated { new, old })
}

async fn insert_new(
    conn: &mut sqlx::AnyConnection,
    hasher: &SecretHasher,
    valid: &Validated,
    now: i64,
    actor: &Actor,
    rotated_from: Option<&str>,
) -> Result<CreatedApiKey> {
    let plaintext = new_plaintext()?;
    let row = ApiKeyRow {
        // A prefix, so that an id never starts with `-` on a command line and
        // is never mistaken for a key.
        id: format!("ak_{}", random::identifier()?),
        display_prefix: api_key::display_prefix(&plaintext).to_owned(),
        name: valid.name.clone(),
        instances: serde_json::to_string(&valid.instances).map_err(Error::internal)?,
        scope: valid.scope.to_string(),
        created_at: now,
        created_by: actor.name.clone(),
        expires_at: valid.expires_at,
        revoked_at: None,
        last_used_at: None,
        use_count: 0,
        rotated_from: rotated_from.map(str::to_owned),
    };
    api_keys::insert(conn, &row, &hasher.hash(Purpose::API_KEY, &plaintext)).await?;
    Ok(CreatedApiKey { api_key: plaintext, info: ApiKeyInfo::from_row(row, now)? })
}

fn new_plaintext() -> Result<String, random::RandomError> {
    let mut failed = None;
    let key = api_key::generate(|buf| {
        if let Err(e) = random::fill(buf) {
            failed = Some(e);
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(key),
    }
}

/// What audit rows say about a key: identifiers and settings, nothing secret.
fn details(info: &ApiKeyInfo) -> serde_json::Value {
    json!({
        "key_id": info.id,
        "display_prefix": info.display_prefix,
        "name": info.name,
        "instances": info.instances,
        "scope": info.scope,
        "expires_at": info.expires_at,
    })
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("no API key `{id}`"))
}

fn already_revoked(id: &str) -> Error {
    Error::conflict(format!("API key `{id}` is revoked or already rotated; create a new key instead"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn new_keys_are_well_formed_and_distinct() {
        let a = super::new_plaintext().unwrap();
        let b = super::new_plaintext().unwrap();
        assert_ne!(a, b);
        assert_eq!(sekisho_contract::api_key::check_format(&a), Ok(()));
    }
}
