//! Re-sealing every encrypted field under the current master key, after a
//! rotation (`sekisho-authz keys reencrypt`).
//!
//! Walks each encrypted column in batches; each batch is one transaction with
//! its audit row. A value is swapped only if it is unchanged since it was
//! read, so a service writing at the same time never loses an update. Values
//! already under the current key are skipped, which makes the run idempotent
//! and resumable: after an interruption, run it again. When it reports
//! nothing left under other keys, the previous keys can be removed.

use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::crypto::field::FieldCipher;
use crate::error::Result;
use crate::storage::Db;
use crate::storage::sealed_fields::{self, SealedColumn};

/// An encrypted column and the associated-data prefix its values are sealed
/// with (`{context}:{row key}`, as the code that writes them seals them).
struct SealedField {
    column: SealedColumn,
    context: &'static str,
}

/// Every encrypted field at rest. A new one must be listed here, or a
/// rotation would leave it under a key that is about to be removed.
const SEALED_FIELDS: [SealedField; 5] = [
    SealedField {
        column: SealedColumn { table: "signing_keys", key: "kid", column: "private_key" },
        context: "signing_keys.private_key",
    },
    SealedField {
        column: SealedColumn { table: "users", key: "subject", column: "email_sealed" },
        context: "users.email",
    },
    SealedField {
        column: SealedColumn { table: "users", key: "subject", column: "profile_sealed" },
        context: "users.profile",
    },
    SealedField {
        column: SealedColumn { table: "oidc_logins", key: "state_hash", column: "secrets" },
        context: "oidc_logins.secrets",
    },
    SealedField {
        column: SealedColumn { table: "hash_keys", key: "id", column: "sealed_key" },
        context: "hash_keys.sealed_key",
    },
];

/// What a run did to one column.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ColumnReport {
    /// `table.column`.
    pub field: String,
    /// Values now sealed under the current key.
    pub resealed: u64,
    /// Values that changed while the run read them (a new login, say): the
    /// writer sealed them under the current key already.
    pub changed_meanwhile: u64,
    /// Values no configured key opens (wrong or missing previous key), or
    /// that are damaged; left as they are.
    pub unreadable: u64,
    /// Values still not under the current key after the run.
    pub left_under_other_keys: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub key_id: String,
    pub fields: Vec<ColumnReport>,
}

impl Report {
    /// Whether every value is sealed under the current key: the previous keys can go.
    pub fn complete(&self) -> bool {
        self.fields.iter().all(|f| f.left_under_other_keys == 0)
    }
}

/// Re-seals every field not under the current key, `batch_size` rows per transaction.
pub async fn run(db: &Db, cipher: &FieldCipher, actor: &Actor, batch_size: i64) -> Result<Report> {
    let key_id = cipher.current_key_id().to_owned();
    let prefix = format!("v1:{key_id}:");
    let mut fields = Vec::new();
    for field in &SEALED_FIELDS {
        let mut report = ColumnReport {
            field: format!("{}.{}", field.column.table, field.column.column),
            resealed: 0,
            changed_meanwhile: 0,
            unreadable: 0,
            left_under_other_keys: 0,
        };
        let mut after = String::new();
        loop {
            let batch = sealed_fields::stale_batch(db.pool(), field.column, &prefix, &after, batch_size).await?;
            let Some((last, _)) = batch.last() else { break };
            after = last.clone();
            let mut tx = db.begin().await?;
            let mut resealed = 0;
            for (key, sealed) in &batch {
                let context = format!("{}:{key}", field.context);
                let Ok(plain) = cipher.open(sealed, &context).map(Zeroizing::new) else {
                    report.unreadable += 1;
                    continue;
                };
                let fresh = cipher.seal(&plain, &context)?;
                if sealed_fields::replace(&mut tx, field.column, key, sealed, &fresh).await? {
                    resealed += 1;
                } else {
                    report.changed_meanwhile += 1;
                }
            }
            if resealed > 0 {
                let details = json!({ "field": report.field, "resealed": resealed, "key_id": key_id });
                audit::record(&mut tx, &AuditEvent::success(EventKind::FieldsReencrypted, actor, details)).await?;
            }
            tx.commit().await?;
            report.resealed += resealed;
        }
        report.left_under_other_keys = sealed_fields::count_stale(db.pool(), field.column, &prefix).await?;
        fields.push(report);
    }
    Ok(Report { key_id, fields })
}
