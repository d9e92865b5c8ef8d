//! The audit log (SPEC S4): who did what, to which client or subject, from
//! where, with what outcome.
//!
//! An event is written with [`record`] on the connection of the transaction that
//! makes the change it describes, so the change and its audit row commit or
//! roll back together. Events never hold a secret: no token, key or password,
//! only identifiers such as a `jti` or a `kid`.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::error::Result;
use crate::storage::{self, Db};
use crate::time::now_unix;

/// What happened. The string forms are the stable `event` values of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    InstanceCreated,
    InstanceUpdated,
    InstanceDeleted,
    KeyGenerated,
    KeyRotated,
    FieldsReencrypted,
    TokenMinted,
    AdminRefused,
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeyRotated,
    ApiKeyRefused,
    ClientRegistered,
    ClientUpdated,
    ClientRevoked,
    LoginSucceeded,
    LoginFailed,
    ConsentGranted,
    ConsentDenied,
    CodeIssued,
    CodeRedeemed,
    CodeReplayed,
    TokenIssued,
    TokenRefused,
    TokenRevoked,
    RefreshReused,
    BreakerOpened,
    BreakerHalfOpen,
    BreakerClosed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::InstanceCreated => "instance.created",
            EventKind::InstanceUpdated => "instance.updated",
            EventKind::InstanceDeleted => "instance.deleted",
            EventKind::KeyGenerated => "key.generated",
            EventKind::KeyRotated => "key.rotated",
            EventKind::FieldsReencrypted => "fields.reencrypted",
            EventKind::TokenMinted => "token.minted",
            EventKind::AdminRefused => "admin.refused",
            EventKind::ApiKeyCreated => "api_key.created",
            EventKind::ApiKeyRevoked => "api_key.revoked",
            EventKind::ApiKeyRotated => "api_key.rotated",
            EventKind::ApiKeyRefused => "api_key.refused",
            EventKind::ClientRegistered => "client.registered",
            EventKind::ClientUpdated => "client.updated",
            EventKind::ClientRevoked => "client.revoked",
            EventKind::LoginSucceeded => "login.succeeded",
            EventKind::LoginFailed => "login.failed",
            EventKind::ConsentGranted => "consent.granted",
            EventKind::ConsentDenied => "consent.denied",
            EventKind::CodeIssued => "code.issued",
            EventKind::CodeRedeemed => "code.redeemed",
            EventKind::CodeReplayed => "code.replayed",
            EventKind::TokenIssued => "token.issued",
            EventKind::TokenRefused => "token.refused",
            EventKind::TokenRevoked => "token.revoked",
            EventKind::RefreshReused => "refresh.reused",
            EventKind::BreakerOpened => "breaker.opened",
            EventKind::BreakerHalfOpen => "breaker.half_open",
            EventKind::BreakerClosed => "breaker.closed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            other => Err(format!("`{other}` is not success or failure")),
        }
    }
}

/// Who caused an event: `admin-api`, `cli`, `system` (start-up), and later
/// OAuth clients and users; with the peer address when it came over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor { name: "cli".into(), ip: None }
    }

    pub fn system() -> Actor {
        Actor { name: "system".into(), ip: None }
    }

    pub fn admin_api(ip: Option<String>) -> Actor {
        Actor { name: "admin-api".into(), ip }
    }

    /// Someone not (yet) authenticated on an OAuth endpoint: a registering client,
    /// a browser at the authorization endpoint.
    pub fn anonymous(ip: Option<String>) -> Actor {
        Actor { name: "anonymous".into(), ip }
    }

    /// An OAuth client, authenticated or identified by its `client_id`.
    pub fn client(ip: Option<String>) -> Actor {
        Actor { name: "client".into(), ip }
    }

    /// A logged-in user (consent decisions).
    pub fn user(ip: Option<String>) -> Actor {
        Actor { name: "user".into(), ip }
    }
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: EventKind,
    pub actor: Actor,
    pub outcome: Outcome,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub reason: Option<String>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn success(kind: EventKind, actor: &Actor, details: serde_json::Value) -> AuditEvent {
        AuditEvent {
            kind,
            actor: actor.clone(),
            outcome: Outcome::Success,
            client_id: None,
            subject: None,
            reason: None,
            details,
        }
    }

    pub fn with_client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    pub fn with_subject(mut self, subject: &str) -> Self {
        self.subject = Some(subject.to_owned());
        self
    }

    pub fn failure(
        kind: EventKind,
        actor: &Actor,
        reason: impl Into<String>,
        details: serde_json::Value,
    ) -> AuditEvent {
        AuditEvent {
            outcome: Outcome::Failure,
            reason: Some(reason.into()),
            ..AuditEvent::success(kind, actor, details)
        }
    }
}

/// Writes `event` on `conn`, which should be inside the transaction of the change.
pub async fn record(conn: &mut AnyConnection, event: &AuditEvent) -> Result<(), sqlx::Error> {
    storage::audit_events::insert(conn, now_unix(), event).await
}

/// Records an event that goes with no other change (a refused request, a
/// breaker transition) in a transaction of its own.
pub async fn record_alone(db: &Db, event: &AuditEvent) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    record(&mut tx, event).await?;
    tx.commit().await
}

/// One row of the log as the admin API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub actor: String,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub ip: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub details: serde_json::Value,
}

/// Which events to read: each filter that is set must match. Times are unix
/// seconds, `since` inclusive and `until` exclusive; `before` is the id of the
/// last event of the previous page.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub client_id: Option<String>,
    pub subject: Option<String>,
    pub event: Option<String>,
    pub outcome: Option<Outcome>,
    pub before: Option<i64>,
    pub limit: i64,
}

/// Most recent first; `event` filters by exact event name.
pub async fn list(db: &Db, event: Option<&str>, limit: i64) -> Result<Vec<AuditRecord>> {
    query(db, &AuditFilter { event: event.map(str::to_owned), limit, ..AuditFilter::default() }).await
}

/// The events `filter` selects, most recent first.
pub async fn query(db: &Db, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
    let rows = storage::audit_events::query(db.pool(), filter).await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditRecord {
            id: r.id,
            at: r.at,
            event: r.event,
            actor: r.actor,
            client_id: r.client_id,
            subject: r.subject,
            ip: r.ip,
            outcome: r.outcome,
            reason: r.reason,
            // Written by us as JSON; shown as a string if it ever is not.
            details: serde_json::from_str(&r.details).unwrap_or(serde_json::Value::String(r.details)),
        })
        .collect())
}

/// A point in time as an operator writes it: unix seconds, an RFC 3339
/// timestamp (`2026-11-28T07:00:00Z`), or a duration ago (`15m`, `2h`, `7d`).
pub fn parse_time(text: &str, now: i64) -> Option<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Some(secs);
    }
    if let Ok(at) = humantime::parse_rfc3339_weak(text) {
        return at.duration_since(std::time::UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_secs()).ok());
    }
    let ago = humantime::parse_duration(text).ok()?;
    Some(now.saturating_sub(i64::try_from(ago.as_secs()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_seconds_timestamps_or_durations_ago() {
        assert_eq!(parse_time("1700000000", 0), Some(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z", 0), Some(1_700_000_000));
        assert_eq!(parse_time("2h", 10_000), Some(10_000 - 7200));
        assert_eq!(parse_time("yesterday", 10_000), None);
        assert_eq!(parse_time("", 10_000), None);
    }
}
