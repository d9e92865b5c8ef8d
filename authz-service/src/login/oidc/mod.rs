//! Login federated to an upstream OpenID Connect provider — Auth0 or any other
//! (SPEC U1–U3). Sekisho is the provider's relying party: one upstream
//! application serves every MCP client.
//!
//! ```text
//! /oauth/authorize ─▶ start: discovery (through the breaker) ─▶ our state, nonce, PKCE S256
//!        stored in oidc_logins ─▶ 302 to the provider's authorization endpoint
//! provider ─▶ GET /oauth/callback?code&state ─▶ take the login by state (single use)
//!        ─▶ token endpoint (breaker) ─▶ ID token verified (JWKS, breaker; iss, aud, nonce, exp, iat)
//!        ─▶ user created/updated (PII sealed) ─▶ login.succeeded ─▶ /oauth/authorize/continue
//! ```
//!
//! Every call to the provider goes through one [`breaker::Breaker`]. While it
//! is open a login is refused at once: the browser goes to
//! `/oauth/login/unavailable`, which sends it back to the client with
//! `error=temporarily_unavailable` and `Retry-After` (or, if the client is not
//! known any more, shows a 503 page with `Retry-After`). The last good
//! discovery document and JWKS stay in use when a refresh fails. Nothing here
//! is on the path of refresh, client credentials, API keys or JWT validation.
//!
//! Upstream tokens are not kept: the ID token is read once and dropped.

pub mod breaker;
pub mod http;
pub mod id_token;
pub mod settings;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::app::App;
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::authorize::pending::{self, Pending};
use crate::crypto::random;
use crate::crypto::secret_hash::Purpose;
use crate::error::{Error, Result};
use crate::http::client_ip::ClientIp;
use crate::http::html;
use crate::login::{self, Identity, IdentityProvider, LoginFuture, LoginStart};
use crate::params::Params;
use crate::storage::oidc_logins::{self, OidcLoginRow};
use crate::storage::users::{self, UserRow};
use crate::time::now_unix;

use breaker::{Breaker, State as BreakerState, Transition};
use id_token::{Expected, IdTokenError, KeySet};
use settings::OidcSettings;

pub const CALLBACK_PATH: &str = "/oauth/callback";
pub const UNAVAILABLE_PATH: &str = "/oauth/login/unavailable";
/// Time for the user to log in at the provider.
const LOGIN_LIFETIME: i64 = pending::LIFETIME;
/// An unknown `kid` refetches the JWKS at most this often.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// `Retry-After` when the provider failed but the breaker is still closed.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The provider's discovery document: what we use of it.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// How a guarded call to the provider ended, when it did not succeed.
#[derive(Debug)]
enum Upstream {
    /// The breaker is open: nothing was sent.
    Open { retry_after: Duration },
    /// No usable answer (network, timeout, 5xx, garbage): counted by the breaker.
    Down(String),
    /// The provider answered and refused (4xx): it is up.
    Refused(String),
}

#[derive(Serialize, Deserialize)]
struct LoginSecrets {
    nonce: String,
    verifier: String,
}

pub struct OidcLogin {
    inner: Arc<Inner>,
}

struct Inner {
    settings: OidcSettings,
    breaker: Breaker,
    http: http::Client,
    discovery: RwLock<Option<Arc<Metadata>>>,
    jwks: RwLock<Option<(Arc<KeySet>, Instant)>>,
}

impl OidcLogin {
    pub fn new(settings: OidcSettings) -> anyhow::Result<OidcLogin> {
        let breaker = Breaker::new(settings.breaker);
        Ok(OidcLogin {
            inner: Arc::new(Inner {
                settings,
                breaker,
                http: http::Client::new()?,
                discovery: RwLock::new(None),
                jwks: RwLock::new(None),
            }),
        })
    }
}

impl IdentityProvider for OidcLogin {
    fn name(&self) -> &'static str {
        self.inner.settings.provider
    }

    fn start<'a>(&'a self, app: &'a App, request_id: &'a str) -> LoginFuture<'a> {
        Box::pin(self.inner.start(app, request_id))
    }

    fn routes(&self) -> Router<App> {
        let callback = self.inner.clone();
        let unavailable = self.inner.clone();
        Router::new()
            .route(
                CALLBACK_PATH,
                get(move |State(app): State<App>, ClientIp(ip): ClientIp, RawQuery(query): RawQuery| {
                    let inner = callback.clone();
                    async move { inner.callback(&app, &Actor::user(ip), query.as_deref()).await }
                }),
            )
            .route(
                UNAVAILABLE_PATH,
                get(move |State(app): State<App>, ClientIp(ip): ClientIp, RawQuery(query): RawQuery| {
                    let inner = unavailable.clone();
                    async move { inner.unavailable(&app, &Actor::user(ip), query.as_deref()).await }
                }),
            )
    }

    fn health(&self) -> Option<Value> {
        let inner = &self.inner;
        let state = inner.breaker.state();
        Some(json!({
            "provider": inner.settings.provider,
            "issuer": inner.settings.issuer,
            "breaker": state.as_str(),
            "retry_after_secs": inner.breaker.retry_after().map(|d| d.as_secs()),
            "discovery_cached": inner.discovery.read().map(|d| d.is_some()).unwrap_or(false),
            "jwks_cached": inner.jwks.read().map(|j| j.is_some()).unwrap_or(false),
        }))
    }
}

impl Inner {
    fn redirect_uri(app: &App) -> String {
        format!("{}{CALLBACK_PATH}", app.issuer())
    }

    async fn start(&self, app: &App, request_id: &str) -> Result<LoginStart> {
        let metadata = match self.discovery(app).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(provider = self.settings.provider, problem = ?e, "login refused: the identity provider is unavailable");
                return Ok(LoginStart::Redirect(format!("{}{UNAVAILABLE_PATH}?request={request_id}", app.issuer())));
            }
        };
        let state = URL_SAFE_NO_PAD.encode(random::bytes::<32>().map_err(Error::internal)?);
        let nonce = URL_SAFE_NO_PAD.encode(random::bytes::<32>().map_err(Error::internal)?);
        let verifier = URL_SAFE_NO_PAD.encode(random::bytes::<32>().map_err(Error::internal)?);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state_hash = app.hasher.hash(Purpose::OIDC_STATE, &state);
        let secrets = serde_json::to_vec(&LoginSecrets { nonce: nonce.clone(), verifier }).map_err(Error::internal)?;
        let sealed = app.cipher.seal(&secrets, &secrets_context(&state_hash)).map_err(Error::internal)?;
        let now = now_unix();
        let row = OidcLoginRow {
            state_hash,
            request_id: request_id.to_owned(),
            secrets: sealed,
            created_at: now,
            expires_at: now + LOGIN_LIFETIME,
        };
        let mut tx = app.db.begin().await?;
        oidc_logins::delete_expired(&mut tx, now).await?;
        oidc_logins::insert(&mut tx, &row).await?;
        tx.commit().await?;

        let mut url = Url::parse(&metadata.authorization_endpoint).map_err(Error::internal)?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &Self::redirect_uri(app))
            .append_pair("scope", &self.settings.scope)
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(LoginStart::Redirect(url.into()))
    }

    /// `GET /oauth/callback`: the provider sends the browser back here.
    async fn callback(&self, app: &App, actor: &Actor, query: Option<&str>) -> Response {
        let params = Params::from_query(query);
        let provider = self.settings.provider;
        let Some(state) = params.one("state").ok().flatten() else {
            self.audit_failure(app, None, "the provider's answer has no state", actor).await;
            return html::error_page(
                app,
                &Error::invalid_request("this login answer carries no state; start again from the application"),
            );
        };
        let state_hash = app.hasher.hash(Purpose::OIDC_STATE, state);
        let login = match take_login(app, &state_hash).await {
            Ok(Some(login)) => login,
            Ok(None) => {
                self.audit_failure(app, None, "unknown, expired or reused state", actor).await;
                return html::error_page(
                    app,
                    &Error::invalid_request(
                        "this login answer does not belong to a login in progress (expired, reused or tampered with); \
                         start again from the application",
                    ),
                );
            }
            Err(e) => return html::error_page(app, &e),
        };
        let pending = match pending::load_own(app, &login.request_id).await {
            Ok(p) => p,
            Err(e) => return html::error_page(app, &e),
        };

        if let Some(code) = params.one("error").ok().flatten() {
            let code = sanitize_code(code);
            let reason = format!("the provider answered error={code}");
            let _ = login::fail(app, &pending.id, provider, &reason, actor).await;
            let (ours, description) = match code.as_str() {
                "temporarily_unavailable" => {
                    ("temporarily_unavailable", "the identity provider is temporarily unavailable")
                }
                "server_error" => ("server_error", "the identity provider failed"),
                _ => ("access_denied", "the login at the identity provider did not succeed"),
            };
            return to_client(app, &pending, ours, description, None);
        }
        let Some(code) = params.one("code").ok().flatten() else {
            let _ = login::fail(app, &pending.id, provider, "the provider's answer has no code", actor).await;
            return to_client(app, &pending, "access_denied", "the identity provider sent no authorization code", None);
        };

        match self.finish(app, &pending, &login, code, actor).await {
            Ok(()) => {
                let location = format!("{}{}", app.issuer(), login::continue_path(&pending.id));
                redirect(StatusCode::FOUND, &location, None)
            }
            Err(Finish::Upstream(Upstream::Open { retry_after })) => {
                let reason = "identity provider unavailable (breaker open)";
                let _ = login::fail(app, &pending.id, provider, reason, actor).await;
                provider_unavailable(app, &pending, retry_after)
            }
            Err(Finish::Upstream(Upstream::Down(why))) => {
                let reason = format!("identity provider unavailable: {why}");
                let _ = login::fail(app, &pending.id, provider, &reason, actor).await;
                provider_unavailable(app, &pending, DEFAULT_RETRY_AFTER)
            }
            Err(Finish::Upstream(Upstream::Refused(why))) => {
                let _ =
                    login::fail(app, &pending.id, provider, &format!("the provider refused the code: {why}"), actor)
                        .await;
                to_client(app, &pending, "access_denied", "the identity provider refused the login", None)
            }
            Err(Finish::IdToken(e)) => {
                let _ = login::fail(app, &pending.id, provider, &e.to_string(), actor).await;
                to_client(app, &pending, "access_denied", "the identity provider's answer could not be verified", None)
            }
            Err(Finish::OtherIssuer) => {
                let reason = "the provider's subject belongs to a user of another issuer";
                let _ = login::fail(app, &pending.id, provider, reason, actor).await;
                to_client(app, &pending, "access_denied", "this account cannot log in here", None)
            }
            Err(Finish::Internal(e)) => {
                tracing::error!(error = %e, "upstream login failed on our side");
                let _ = login::fail(app, &pending.id, provider, "internal error", actor).await;
                to_client(app, &pending, "server_error", "the login could not be completed", None)
            }
        }
    }

    /// Code → tokens → verified ID token → user → login bound to the request.
    async fn finish(
        &self,
        app: &App,
        pending: &Pending,
        login: &OidcLoginRow,
        code: &str,
        actor: &Actor,
    ) -> Result<(), Finish> {
        let secrets = app.cipher.open(&login.secrets, &secrets_context(&login.state_hash)).map_err(Finish::internal)?;
        let secrets: LoginSecrets = serde_json::from_slice(&secrets).map_err(Finish::internal)?;
        let metadata = self.discovery_cached_or_fetch(app).await.map_err(Finish::Upstream)?;
        let token = self.exchange(app, &metadata, code, &secrets.verifier).await.map_err(Finish::Upstream)?;
        let expected = Expected {
            issuer: &self.settings.issuer,
            client_id: &self.settings.client_id,
            nonce: &secrets.nonce,
            now: now_unix(),
        };
        let keys = self.jwks(app, &metadata, false).await.map_err(Finish::Upstream)?;
        let claims = match id_token::verify(&token, &keys, &expected) {
            Err(IdTokenError::UnknownKey) => {
                let keys = self.jwks(app, &metadata, true).await.map_err(Finish::Upstream)?;
                id_token::verify(&token, &keys, &expected)
            }
            other => other,
        }
        .map_err(Finish::IdToken)?;
        if !self.save_user(app, &claims).await.map_err(|e| Finish::Internal(e.to_string()))? {
            return Err(Finish::OtherIssuer);
        }
        let identity = Identity { subject: claims.sub.clone(), provider: self.settings.provider };
        login::complete(app, &pending.id, &identity, actor).await.map_err(|e| Finish::Internal(e.to_string()))?;
        Ok(())
    }

    /// `false` when the subject is taken by a user of another issuer.
    async fn save_user(&self, app: &App, claims: &id_token::Claims) -> Result<bool> {
        let subject = &claims.sub;
        let email = claims
            .email
            .as_ref()
            .map(|e| serde_json::to_vec(&json!({ "email": e, "verified": claims.email_verified })))
            .transpose()
            .map_err(Error::internal)?;
        let profile = serde_json::to_vec(&json!({
            "name": claims.name, "nickname": claims.nickname, "picture": claims.picture,
        }))
        .map_err(Error::internal)?;
        let email_sealed = email
            .map(|e| app.cipher.seal(&e, &format!("users.email:{subject}")))
            .transpose()
            .map_err(Error::internal)?;
        let profile_sealed = app.cipher.seal(&profile, &format!("users.profile:{subject}")).map_err(Error::internal)?;
        let now = now_unix();
        let row = UserRow {
            subject: subject.clone(),
            issuer: claims.iss.clone(),
            upstream_subject: subject.clone(),
            email_sealed,
            profile_sealed: Some(profile_sealed),
            created_at: now,
            updated_at: now,
            last_login_at: now,
        };
        let mut tx = app.db.begin().await?;
        let saved = users::upsert(&mut tx, &row).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// `GET /oauth/login/unavailable?request=…`: the breaker refused a login.
    async fn unavailable(&self, app: &App, actor: &Actor, query: Option<&str>) -> Response {
        let params = Params::from_query(query);
        let retry_after = self.breaker.retry_after().unwrap_or(DEFAULT_RETRY_AFTER);
        let pending = match params.one("request").ok().flatten() {
            Some(id) => pending::load_own(app, id).await.ok(),
            None => None,
        };
        let Some(pending) = pending else {
            let mut page = html::error_page(app, &Error::Unavailable("identity provider".into()));
            set_retry_after(&mut page, retry_after);
            return page;
        };
        let _ = login::fail(app, &pending.id, self.settings.provider, "identity provider unavailable", actor).await;
        to_client(
            app,
            &pending,
            "temporarily_unavailable",
            "the identity provider is unavailable; retry later",
            Some(retry_after),
        )
    }

    /// Runs `call` if the breaker allows it, and tells the breaker how it went.
    async fn guarded<T>(
        &self,
        app: &App,
        what: &'static str,
        call: impl Future<Output = Result<T, Upstream>>,
    ) -> Result<T, Upstream> {
        let (permit, transition) = self.breaker.check();
        if let Some(t) = transition {
            self.audit_transition(app, t).await;
        }
        if let Err(rejected) = permit {
            return Err(Upstream::Open { retry_after: rejected.retry_after });
        }
        let outcome = call.await;
        let transition = match &outcome {
            Ok(_) | Err(Upstream::Refused(_)) => self.breaker.success(),
            Err(Upstream::Down(why)) => {
                tracing::warn!(provider = self.settings.provider, call = what, problem = %why, "identity provider call failed");
                self.breaker.failure()
            }
            Err(Upstream::Open { .. }) => None,
        };
        if let Some(t) = transition {
            self.audit_transition(app, t).await;
        }
        outcome
    }

    async fn audit_transition(&self, app: &App, t: Transition) {
        app.metrics.breaker_transition(self.settings.provider, t.from, t.to);
        let kind = match t.to {
            BreakerState::Open => EventKind::BreakerOpened,
            BreakerState::HalfOpen => EventKind::BreakerHalfOpen,
            BreakerState::Closed => EventKind::BreakerClosed,
        };
        let details = json!({
            "provider": self.settings.provider,
            "issuer": self.settings.issuer,
            "from": t.from.as_str(),
            "to": t.to.as_str(),
            "consecutive_failures": t.failures,
            "cooldown_secs": self.breaker.settings().cooldown.as_secs(),
        });
        if t.to == BreakerState::Open {
            tracing::warn!(
                provider = self.settings.provider,
                from = t.from.as_str(),
                failures = t.failures,
                "identity provider breaker opened"
            );
        } else {
            tracing::info!(
                provider = self.settings.provider,
                from = t.from.as_str(),
                to = t.to.as_str(),
                "identity provider breaker changed state"
            );
        }
        let event = if t.to == BreakerState::Open {
            AuditEvent::failure(kind, &Actor::system(), format!("{} consecutive failures", t.failures), details)
        } else {
            AuditEvent::success(kind, &Actor::system(), details)
        };
        if let Err(e) = audit::record_alone(&app.db, &event).await {
            tracing::error!(error = %e, "cannot write the breaker's audit event");
        }
    }

    /// Fetches the discovery document (every login start: this is how the
    /// breaker learns the provider is down); the last good copy when the fetch
    /// fails while the breaker is still closed.
    async fn discovery(&self, app: &App) -> Result<Arc<Metadata>, Upstream> {
        let fetched = self.guarded(app, "discovery", self.fetch_discovery()).await;
        match fetched {
            Ok(m) => {
                let m = Arc::new(m);
                if let Ok(mut cache) = self.discovery.write() {
                    *cache = Some(m.clone());
                }
                Ok(m)
            }
            Err(e @ Upstream::Open { .. }) => Err(e),
            Err(e) => self.cached_discovery().ok_or(e),
        }
    }

    async fn discovery_cached_or_fetch(&self, app: &App) -> Result<Arc<Metadata>, Upstream> {
        match self.cached_discovery() {
            Some(m) => Ok(m),
            None => self.discovery(app).await,
        }
    }

    fn cached_discovery(&self) -> Option<Arc<Metadata>> {
        self.discovery.read().ok().and_then(|d| d.clone())
    }

    async fn fetch_discovery(&self) -> Result<Metadata, Upstream> {
        let url = discovery_url(&self.settings.issuer).map_err(|e| Upstream::Down(e.to_string()))?;
        let answer = self.http.get(&url).await.map_err(|e| Upstream::Down(e.0))?;
        let body = ok_body(answer)?;
        let metadata: Metadata =
            serde_json::from_slice(&body).map_err(|e| Upstream::Down(format!("unreadable discovery document: {e}")))?;
        // OpenID Connect Discovery §4.3: the issuer must be exactly ours.
        if metadata.issuer != self.settings.issuer {
            return Err(Upstream::Down(format!(
                "the discovery document names issuer {:?}, not the configured {:?}",
                metadata.issuer, self.settings.issuer
            )));
        }
        for endpoint in [&metadata.authorization_endpoint, &metadata.token_endpoint, &metadata.jwks_uri] {
            let url = Url::parse(endpoint)
                .map_err(|_| Upstream::Down("the discovery document has a bad endpoint URL".into()))?;
            if url.scheme() != "https" && !self.settings.issuer.starts_with("http://") {
                return Err(Upstream::Down("the discovery document has a non-https endpoint".into()));
            }
        }
        Ok(metadata)
    }

    /// The provider's keys: cached; refetched when `refresh` (an unknown
    /// `kid`), at most every [`JWKS_REFETCH_INTERVAL`]; the last good copy
    /// when a refetch fails.
    async fn jwks(&self, app: &App, metadata: &Metadata, refresh: bool) -> Result<Arc<KeySet>, Upstream> {
        let cached = self.jwks.read().ok().and_then(|j| j.clone());
        if let Some((keys, fetched_at)) = &cached
            && (!refresh || fetched_at.elapsed() < JWKS_REFETCH_INTERVAL)
        {
            return Ok(keys.clone());
        }
        let fetch = async {
            let url = Url::parse(&metadata.jwks_uri).map_err(|e| Upstream::Down(e.to_string()))?;
            let answer = self.http.get(&url).await.map_err(|e| Upstream::Down(e.0))?;
            let body = ok_body(answer)?;
            KeySet::parse(&body).map_err(|e| Upstream::Down(e.to_owned()))
        };
        match self.guarded(app, "jwks", fetch).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut cache) = self.jwks.write() {
                    *cache = Some((keys.clone(), Instant::now()));
                }
                Ok(keys)
            }
            Err(e) => cached.map(|(k, _)| k).ok_or(e),
        }
    }

    /// The token request (RFC 6749 §4.1.3, PKCE): returns the ID token.
    async fn exchange(&self, app: &App, metadata: &Metadata, code: &str, verifier: &str) -> Result<String, Upstream> {
        let basic = metadata.token_endpoint_auth_methods_supported.as_ref().is_none_or(|m| {
            m.iter().any(|m| m == "client_secret_basic") || !m.iter().any(|m| m == "client_secret_post")
        });
        let redirect_uri = Self::redirect_uri(app);
        let (form, authorization) = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("code_verifier", verifier);
            let authorization = if basic {
                // RFC 6749 §2.3.1: each part form-encoded, then Basic.
                let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                let pair = format!("{}:{}", enc(&self.settings.client_id), enc(self.settings.client_secret.expose()));
                Some(format!("Basic {}", STANDARD.encode(pair)))
            } else {
                form.append_pair("client_id", &self.settings.client_id)
                    .append_pair("client_secret", self.settings.client_secret.expose());
                None
            };
            (form.finish(), authorization)
        };
        let call = async {
            let url = Url::parse(&metadata.token_endpoint).map_err(|e| Upstream::Down(e.to_string()))?;
            let answer = self.http.post_form(&url, form, authorization).await.map_err(|e| Upstream::Down(e.0))?;
            if (400..500).contains(&answer.status) && answer.status != 429 {
                let error = serde_json::from_slice::<Value>(&answer.body)
                    .ok()
                    .and_then(|v| v.get("error").and_then(Value::as_str).map(sanitize_code))
                    .unwrap_or_else(|| "unknown".into());
                return Err(Upstream::Refused(format!("HTTP {} error={error}", answer.status)));
            }
            let body = ok_body(answer)?;
            let value: Value =
                serde_json::from_slice(&body).map_err(|_| Upstream::Down("unreadable token response".into()))?;
            value.get("id_token").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
                Upstream::Refused("the token response has no id_token (is `openid` in the scope?)".into())
            })
        };
        self.guarded(app, "token", call).await
    }

    async fn audit_failure(&self, app: &App, pending: Option<&Pending>, reason: &str, actor: &Actor) {
        let mut event =
            AuditEvent::failure(EventKind::LoginFailed, actor, reason, json!({ "provider": self.settings.provider }));
        if let Some(p) = pending {
            event = event.with_client(&p.request.client_id);
        }
        let written = async {
            let mut tx = app.db.begin().await?;
            audit::record(&mut tx, &event).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write a login.failed audit event");
        }
    }
}

enum Finish {
    Upstream(Upstream),
    IdToken(IdTokenError),
    /// The subject already belongs to a user who logged in at another issuer.
    OtherIssuer,
    Internal(String),
}

impl Finish {
    fn internal(e: impl std::fmt::Display) -> Finish {
        Finish::Internal(e.to_string())
    }
}

async fn take_login(app: &App, state_hash: &str) -> Result<Option<OidcLoginRow>> {
    let mut tx = app.db.begin().await?;
    let row = oidc_logins::take(&mut tx, state_hash, now_unix()).await?;
    tx.commit().await?;
    Ok(row)
}

fn secrets_context(state_hash: &str) -> String {
    format!("oidc_logins.secrets:{state_hash}")
}

/// `{issuer}/.well-known/openid-configuration` (the issuer's path kept, one slash).
fn discovery_url(issuer: &str) -> std::result::Result<Url, url::ParseError> {
    Url::parse(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')))
}

fn ok_body(answer: http::Answer) -> Result<Vec<u8>, Upstream> {
    if answer.status == 200 { Ok(answer.body) } else { Err(Upstream::Down(format!("HTTP {}", answer.status))) }
}

/// An error code from the provider, safe to log and compare.
fn sanitize_code(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').take(64).collect()
}

/// The client's redirect URI with an error (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
/// What the MCP client hears when the provider cannot be reached: try again later.
fn provider_unavailable(app: &App, pending: &Pending, retry_after: Duration) -> Response {
    to_client(
        app,
        pending,
        "temporarily_unavailable",
        "the identity provider is unavailable; retry later",
        Some(retry_after),
    )
}

fn to_client(app: &App, pending: &Pending, code: &str, description: &str, retry_after: Option<Duration>) -> Response {
    let Ok(mut url) = Url::parse(&pending.request.redirect_uri) else {
        return html::error_page(app, &Error::internal(anyhow::anyhow!("stored redirect URI does not parse")));
    };
    {
        let mut query = url.query_pairs_mut();
        query.append_pair("error", code).append_pair("error_description", description);
        if let Some(state) = &pending.request.state {
            query.append_pair("state", state);
        }
        query.append_pair("iss", app.issuer());
    }
    redirect(StatusCode::FOUND, url.as_str(), retry_after)
}

fn redirect(status: StatusCode, location: &str, retry_after: Option<Duration>) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, value);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Some(after) = retry_after {
        set_retry_after(&mut response, after);
    }
    response
}

fn set_retry_after(response: &mut Response, after: Duration) {
    let secs = (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1);
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_keeps_the_issuer_path() {
        assert_eq!(
            discovery_url("https://acme.auth0.com/").unwrap().as_str(),
            "https://acme.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://idp.example/realms/x").unwrap().as_str(),
            "https://idp.example/realms/x/.well-known/openid-configuration"
        );
    }

    #[test]
    fn provider_error_codes_are_sanitized() {
        assert_eq!(sanitize_code("access_denied\r\n<script>"), "access_deniedscript");
    }
}
