//! Authorization requests waiting for the user, kept in the database under a
//! random id so that a login at an upstream provider can come back to them, on
//! any replica.
//!
//! A pending request is bound to the browser that started it by a cookie (only
//! its hash is stored): a request id leaked from one browser cannot be
//! completed in another (login CSRF). The consent form carries a CSRF token,
//! also stored hashed, that changes each time the form is shown.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::app::App;
use crate::authorize::request::AuthorizationRequest;
use crate::crypto::random;
use crate::crypto::secret_hash::Purpose;
use crate::error::{Error, Result};
use crate::storage::authorization_requests::{self, PendingRow};
use crate::time::now_unix;

/// Time for a user to log in (possibly upstream) and decide.
pub const LIFETIME: i64 = 15 * 60;

/// A pending request as loaded.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub request: AuthorizationRequest,
    /// Who logged in; `None` until someone did.
    pub subject: Option<String>,
    csrf_hash: Option<String>,
}

/// The browser's binding secret: its cookie if it sent a well-formed one,
/// else a new one (returned second, to be set as the cookie).
pub fn browser_binding(cookie: Option<&str>) -> Result<(String, Option<String>)> {
    match cookie.filter(|c| is_token(c)) {
        Some(existing) => Ok((existing.to_owned(), None)),
        None => {
            let fresh = token()?;
            Ok((fresh.clone(), Some(fresh)))
        }
    }
}

pub async fn create(app: &App, request: &AuthorizationRequest, browser: &str) -> Result<String> {
    let id = random::identifier()?;
    let now = now_unix();
    let row = PendingRow {
        id: id.clone(),
        client_id: request.client_id.clone(),
        request: serde_json::to_string(request).map_err(Error::internal)?,
        browser_hash: app.hasher.hash(Purpose::BROWSER_BINDING, browser),
        csrf_hash: None,
        subject: None,
        created_at: now,
        expires_at: now + LIFETIME,
    };
    let mut tx = app.db.begin().await?;
    authorization_requests::delete_expired(&mut tx, now).await?;
    authorization_requests::insert(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(id)
}

/// The pending request `id`, if the browser presenting `cookie` started it.
pub async fn load(app: &App, id: &str, cookie: Option<&str>) -> Result<Pending> {
    let row = authorization_requests::get(app.db.pool(), id, now_unix()).await?.ok_or_else(expired)?;
    let bound = cookie.is_some_and(|c| app.hasher.matches(Purpose::BROWSER_BINDING, c, &row.browser_hash));
    if !bound {
        return Err(Error::invalid_request(
            "this authorization request was started in another browser; start again from the application",
        ));
    }
    from_row(row)
}

/// Like [`load`], for the request this very response created.
pub async fn load_own(app: &App, id: &str) -> Result<Pending> {
    let row = authorization_requests::get(app.db.pool(), id, now_unix()).await?.ok_or_else(expired)?;
    from_row(row)
}

/// A fresh CSRF token for the consent form about to be shown.
pub async fn new_csrf(app: &App, id: &str) -> Result<String> {
    let csrf = token()?;
    let mut tx = app.db.begin().await?;
    if !authorization_requests::set_csrf_hash(&mut tx, id, &app.hasher.hash(Purpose::CONSENT_CSRF, &csrf)).await? {
        return Err(expired());
    }
    tx.commit().await?;
    Ok(csrf)
}

pub fn check_csrf(app: &App, pending: &Pending, csrf: &str) -> Result<()> {
    let ok = pending.csrf_hash.as_deref().is_some_and(|h| app.hasher.matches(Purpose::CONSENT_CSRF, csrf, h));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_request(
            "the consent form is stale or was not sent by this server; start again from the application",
        ))
    }
}

fn from_row(row: PendingRow) -> Result<Pending> {
    let request = serde_json::from_str(&row.request)
        .map_err(|e| Error::internal(anyhow::anyhow!("pending authorization request {}: {e}", row.id)))?;
    Ok(Pending { id: row.id, request, subject: row.subject, csrf_hash: row.csrf_hash })
}

fn expired() -> Error {
    Error::invalid_request(
        "the authorization request has expired or was already answered; start again from the application",
    )
}

/// 256 random bits, base64url: 43 characters.
fn token() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random::bytes::<32>()?))
}

fn is_token(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
