//! The end of an authorization: the user's answer becomes a single-use code
//! (or `access_denied`) on the way back to the client. Codes live ten minutes
//! and are stored only as keyed hashes.
//!
//! The pending request is taken (deleted) in the same transaction, so a
//! double-clicked Approve issues one code; the consent, the code and their
//! audit rows commit together.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::authorize::consent;
use crate::authorize::pending::Pending;
use crate::authorize::redirect;
use crate::crypto::random;
use crate::crypto::secret_hash::Purpose;
use crate::error::{Error, ErrorCode, Result};
use crate::storage::authorization_codes::{self, CodeRow};
use crate::storage::authorization_requests;
use crate::time::now_unix;

/// RFC 6749 §4.1.2: "a maximum authorization code lifetime of 10 minutes".
pub const CODE_LIFETIME: i64 = 600;
/// Redeemed and expired codes are kept this long after expiry, so that a late
/// replay is recognised and what the code yielded is revoked.
const CODE_RETENTION: i64 = 24 * 3600;

/// Why no question was asked, or that one was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentBasis {
    /// The user clicked Approve.
    Granted,
    /// The user approved this before.
    Remembered,
    /// `SEKISHO_DEV_AUTO_CONSENT`.
    Automatic,
}

impl ConsentBasis {
    fn as_str(self) -> &'static str {
        match self {
            ConsentBasis::Granted => "granted",
            ConsentBasis::Remembered => "remembered",
            ConsentBasis::Automatic => "automatic",
        }
    }
}

/// Issues the code; returns the URL to send the browser to.
pub async fn issue(app: &App, pending: &Pending, subject: &str, basis: ConsentBasis, actor: &Actor) -> Result<String> {
    let request = &pending.request;
    let now = now_unix();
    let code = URL_SAFE_NO_PAD.encode(random::bytes::<32>()?);
    let scope = consent::consented_scope(request).to_string();
    let row = CodeRow {
        code_hash: app.hasher.hash(Purpose::AUTHORIZATION_CODE, &code),
        client_id: request.client_id.clone(),
        subject: subject.to_owned(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_given: i64::from(request.redirect_uri_given),
        code_challenge: request.code_challenge.clone(),
        resources: serde_json::to_string(&request.resources).map_err(Error::internal)?,
        scope: scope.clone(),
        refresh: i64::from(request.refresh),
        created_at: now,
        expires_at: now + CODE_LIFETIME,
        redeemed_at: None,
        access_jti: None,
        access_exp: None,
        family_id: None,
    };
    let details = json!({
        "resources": request.resources,
        "scope": scope,
        "consent": basis.as_str(),
        "expires_at": row.expires_at,
    });
    let mut tx = app.db.begin().await?;
    if !authorization_requests::take(&mut tx, &pending.id, now).await? {
        return Err(already_answered());
    }
    if basis == ConsentBasis::Granted {
        consent::remember(&mut tx, subject, request, now).await?;
        let granted = AuditEvent::success(
            EventKind::ConsentGranted,
            actor,
            json!({ "resources": request.resources, "scope": scope }),
        )
        .with_client(&request.client_id)
        .with_subject(subject);
        audit::record(&mut tx, &granted).await?;
    }
    authorization_codes::insert(&mut tx, &row).await?;
    authorization_codes::delete_expired_before(&mut tx, now - CODE_RETENTION).await?;
    let issued = AuditEvent::success(EventKind::CodeIssued, actor, details)
        .with_client(&request.client_id)
        .with_subject(subject);
    audit::record(&mut tx, &issued).await?;
    tx.commit().await?;
    Ok(redirect::success(&request.redirect_uri, &code, request.state.as_deref(), app.issuer()))
}

/// The user said no: `access_denied` to the client.
pub async fn deny(app: &App, pending: &Pending, subject: &str, actor: &Actor) -> Result<String> {
    let request = &pending.request;
    let now = now_unix();
    let mut tx = app.db.begin().await?;
    if !authorization_requests::take(&mut tx, &pending.id, now).await? {
        return Err(already_answered());
    }
    let event = AuditEvent::failure(
        EventKind::ConsentDenied,
        actor,
        "the user denied access",
        json!({ "resources": request.resources, "scope": request.scope }),
    )
    .with_client(&request.client_id)
    .with_subject(subject);
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    let error = Error::refused(ErrorCode::AccessDenied, "the user denied access");
    Ok(redirect::error(&request.redirect_uri, &error, request.state.as_deref(), app.issuer()))
}

fn already_answered() -> Error {
    Error::invalid_request("this authorization request was already answered")
}
