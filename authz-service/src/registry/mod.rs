//! The MCP instance registry (SPEC A11): which instances exist, how clients may
//! authenticate to each, and which scope each operation needs.
//!
//! Both the admin API and the CLI change it through this module, which
//! validates input and writes the audit row in the same transaction. The filter
//! reads it as `sekisho_contract::policy::FilterPolicy`.

pub mod resolve;
mod validate;

use std::collections::BTreeMap;

use sekisho_contract::policy::{AuthMode, InstancePolicy};
use sekisho_contract::resource::{is_valid_instance_id, protected_resource_metadata_url, resource_uri};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::error::{Error, Result};
use crate::storage::Db;
use crate::storage::instances::{self, InstanceRow};
use crate::time::now_unix;

/// A registered instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instance {
    pub id: String,
    pub display_name: String,
    pub auth_mode: AuthMode,
    pub method_scopes: BTreeMap<String, String>,
    pub tool_scopes: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Instance {
    pub fn policy(&self) -> InstancePolicy {
        InstancePolicy {
            id: self.id.clone(),
            auth_mode: self.auth_mode,
            method_scopes: self.method_scopes.clone(),
            tool_scopes: self.tool_scopes.clone(),
        }
    }

    /// The canonical resource URI (RFC 8707), the `aud` of its tokens.
    pub fn resource(&self, issuer: &str) -> String {
        resource_uri(issuer, &self.id)
    }

    pub fn resource_metadata_url(&self, issuer: &str) -> String {
        protected_resource_metadata_url(issuer, &self.id)
    }

    fn from_row(row: InstanceRow) -> Result<Instance> {
        let corrupt = |what: &str| Error::internal(anyhow::anyhow!("instance {}: stored {what} is not valid", row.id));
        Ok(Instance {
            auth_mode: AuthMode::parse(&row.auth_mode).ok_or_else(|| corrupt("auth_mode"))?,
            method_scopes: serde_json::from_str(&row.method_scopes).map_err(|_| corrupt("method_scopes"))?,
            tool_scopes: serde_json::from_str(&row.tool_scopes).map_err(|_| corrupt("tool_scopes"))?,
            display_name: row.display_name,
            created_at: row.created_at,
            updated_at: row.updated_at,
            id: row.id,
        })
    }
}

/// The settings of an instance as an operator gives them (admin API body, CLI flags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// Defaults to the id.
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub auth_mode: AuthMode,
    #[serde(default)]
    pub method_scopes: BTreeMap<String, String>,
    #[serde(default)]
    pub tool_scopes: BTreeMap<String, String>,
}

/// What [`put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Created,
    Updated,
    Unchanged,
}

pub async fn list(db: &Db) -> Result<Vec<Instance>> {
    instances::list(db.pool()).await?.into_iter().map(Instance::from_row).collect()
}

/// The instance, or `None` (also for ids that could never be valid).
pub async fn get(db: &Db, id: &str) -> Result<Option<Instance>> {
    if !is_valid_instance_id(id) {
        return Ok(None);
    }
    instances::find(db, id).await?.map(Instance::from_row).transpose()
}

/// Creates an instance; `conflict` if the id is taken.
pub async fn create(db: &Db, id: &str, spec: &InstanceSpec, actor: &Actor) -> Result<Instance> {
    let row = validated_row(id, spec)?;
    let mut tx = db.begin().await?;
    if !instances::insert(&mut tx, &row).await? {
        return Err(Error::conflict(format!("instance `{id}` already exists")));
    }
    audit::record(&mut tx, &instance_event(EventKind::InstanceCreated, &row, actor)).await?;
    tx.commit().await?;
    Instance::from_row(row)
}

/// Creates the instance or replaces its settings; writes nothing (and audits
/// nothing) when they are unchanged, so scripts can apply it at every start.
pub async fn put(db: &Db, id: &str, spec: &InstanceSpec, actor: &Actor) -> Result<(Instance, Saved)> {
    let row = validated_row(id, spec)?;
    let mut tx = db.begin().await?;
    // Update first: the common re-apply case then needs one statement, and the
    // write lock is taken before anything is read.
    let saved = if instances::update_if_changed(&mut tx, &row).await? {
        audit::record(&mut tx, &instance_event(EventKind::InstanceUpdated, &row, actor)).await?;
        Saved::Updated
    } else if instances::insert(&mut tx, &row).await? {
        audit::record(&mut tx, &instance_event(EventKind::InstanceCreated, &row, actor)).await?;
        Saved::Created
    } else {
        Saved::Unchanged
    };
    let stored = instances::get(&mut *tx, id).await?;
    tx.commit().await?;
    let stored = stored.ok_or_else(|| Error::internal(anyhow::anyhow!("instance {id} vanished while saved")))?;
    Ok((Instance::from_row(stored)?, saved))
}

/// Deletes an instance; `not_found` if there is none.
pub async fn delete(db: &Db, id: &str, actor: &Actor) -> Result<()> {
    if !is_valid_instance_id(id) {
        return Err(Error::not_found(format!("no instance `{id}`")));
    }
    let mut tx = db.begin().await?;
    if !instances::delete(&mut tx, id).await? {
        return Err(Error::not_found(format!("no instance `{id}`")));
    }
    let details = json!({ "instance": id });
    audit::record(&mut tx, &AuditEvent::success(EventKind::InstanceDeleted, actor, details)).await?;
    tx.commit().await?;
    Ok(())
}

fn validated_row(id: &str, spec: &InstanceSpec) -> Result<InstanceRow> {
    validate::instance(id, spec)?;
    let now = now_unix();
    let to_json = |map: &BTreeMap<String, String>| serde_json::to_string(map).map_err(Error::internal);
    Ok(InstanceRow {
        id: id.to_owned(),
        display_name: spec.display_name.clone().unwrap_or_else(|| id.to_owned()),
        auth_mode: spec.auth_mode.as_str().to_owned(),
        // BTreeMap serialises in key order, so equal settings give equal text and
        // the "unchanged" comparison in SQL is exact.
        method_scopes: to_json(&spec.method_scopes)?,
        tool_scopes: to_json(&spec.tool_scopes)?,
        created_at: now,
        updated_at: now,
    })
}

fn instance_event(kind: EventKind, row: &InstanceRow, actor: &Actor) -> AuditEvent {
    let details = json!({
        "instance": row.id,
        "auth_mode": row.auth_mode,
        "method_scopes": serde_json::from_str::<serde_json::Value>(&row.method_scopes).unwrap_or_default(),
        "tool_scopes": serde_json::from_str::<serde_json::Value>(&row.tool_scopes).unwrap_or_default(),
    });
    AuditEvent::success(kind, actor, details)
}
