//! How users log in at the authorization endpoint: the seam between the OAuth
//! flow (`crate::authorize`) and whoever vouches for the user.
//!
//! The authorization endpoint stores the request server-side under an id and
//! asks the configured [`IdentityProvider`] to start a login for it. A provider
//! either knows the user at once ([`LoginStart::Authenticated`], the
//! development login) or sends the browser away ([`LoginStart::Redirect`]): an
//! OIDC provider (Auth0) redirects to its upstream with its own state, nonce and
//! PKCE, serves its callback through [`IdentityProvider::routes`], and there
//! calls [`complete`] (or [`fail`]) and redirects the browser to
//! [`continue_path`], where the authorization endpoint carries on with consent.
//!
//! Not here: consent, codes, or anything about clients.

pub mod dev;
pub mod oidc;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::storage::authorization_requests;
use crate::time::now_unix;

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `sub` of the tokens issued for this user.
    pub subject: String,
    /// Which provider vouched for it (`dev`, `auth0`, …), for the audit log.
    pub provider: &'static str,
}

pub enum LoginStart {
    /// The user is known without a round trip.
    Authenticated(Identity),
    /// Send the browser here; the provider's callback completes the login.
    Redirect(String),
}

pub type LoginFuture<'a> = Pin<Box<dyn Future<Output = Result<LoginStart>> + Send + 'a>>;

pub trait IdentityProvider: Send + Sync {
    /// Short name for logs and the audit log.
    fn name(&self) -> &'static str;

    /// Starts a login for the pending authorization request `request_id`.
    fn start<'a>(&'a self, app: &'a App, request_id: &'a str) -> LoginFuture<'a>;

    /// The provider's own endpoints (an upstream provider's callback), merged
    /// into the service's router.
    fn routes(&self) -> Router<App> {
        Router::new()
    }

    /// The provider's state for `/health` (an upstream provider's breaker).
    fn health(&self) -> Option<serde_json::Value> {
        None
    }
}

/// The provider the configuration selects, if any. An upstream OpenID
/// provider (`AUTH0_DOMAIN` or `SEKISHO_OIDC_ISSUER`) wins over the
/// development login: with both set, users log in upstream.
pub fn from_config(config: &Config) -> anyhow::Result<Option<Arc<dyn IdentityProvider>>> {
    if let Some(settings) = &config.oidc {
        if config.oauth.dev_login {
            tracing::warn!("SEKISHO_DEV_LOGIN is ignored: an upstream OpenID provider is configured and wins");
        }
        return Ok(Some(Arc::new(oidc::OidcLogin::new(settings.clone())?)));
    }
    Ok(config.oauth.dev_login.then(|| Arc::new(dev::DevLogin) as Arc<dyn IdentityProvider>))
}

/// Where the browser goes after a login completed elsewhere.
pub fn continue_path(request_id: &str) -> String {
    format!("/oauth/authorize/continue?request={request_id}")
}

/// Binds `identity` to the pending request and audits the login, together.
pub async fn complete(app: &App, request_id: &str, identity: &Identity, actor: &Actor) -> Result<()> {
    let now = now_unix();
    let mut tx = app.db.begin().await?;
    let pending = authorization_requests::get(&mut *tx, request_id, now).await?.ok_or_else(expired)?;
    if !authorization_requests::set_subject(&mut tx, request_id, &identity.subject, now).await? {
        return Err(expired());
    }
    let event = AuditEvent::success(EventKind::LoginSucceeded, actor, json!({ "provider": identity.provider }))
        .with_client(&pending.client_id)
        .with_subject(&identity.subject);
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Audits a failed login (an upstream provider refused or broke).
pub async fn fail(app: &App, request_id: &str, provider: &'static str, reason: &str, actor: &Actor) -> Result<()> {
    let pending = authorization_requests::get(app.db.pool(), request_id, now_unix()).await?;
    let mut event = AuditEvent::failure(EventKind::LoginFailed, actor, reason, json!({ "provider": provider }));
    if let Some(pending) = &pending {
        event = event.with_client(&pending.client_id);
    }
    let mut tx = app.db.begin().await?;
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

fn expired() -> Error {
    Error::invalid_request("the authorization request has expired; start again from the application")
}
