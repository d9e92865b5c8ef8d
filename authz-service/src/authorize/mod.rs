//! The authorization endpoint's flow (SPEC A5): validate the request, store it,
//! have the user log in (`crate::login`), ask for consent (or use a remembered
//! or automatic one), and send the browser back to the client with a code.
//!
//! ```text
//! GET /oauth/authorize ──▶ validate ──▶ pending request ──▶ login
//!        login known at once (dev) ──┐        └─ upstream ─▶ callback ─▶ GET /oauth/authorize/continue
//!                                    ▼                                          │
//!                       consent remembered/automatic? ──yes──▶ code ──▶ 302 to the client
//!                                    │ no
//!                                    ▼
//!                       consent page ──▶ POST /oauth/authorize/consent ──▶ code / access_denied ──▶ 303
//! ```
//!
//! With the development login and auto-consent, a single GET ends in the
//! redirect to the client, which is what headless clients and tests need.
//! This module decides; `crate::http::authorize` renders.

pub mod code;
pub mod consent;
pub mod pending;
mod redirect;
pub mod request;

use crate::app::App;
use crate::audit::Actor;
use crate::clients;
use crate::error::{Error, Result};
use crate::login::{self, LoginStart};
use crate::params::Params;

pub use consent::ConsentPage;
pub use request::AuthorizationRequest;

use code::ConsentBasis;
use pending::Pending;
use request::Refusal;

/// What the browser should see next.
#[derive(Debug)]
pub enum Step {
    /// Back to the client's redirect URI (a code or an error).
    ToClient(String),
    /// To the identity provider.
    Login(String),
    /// The consent page.
    Consent(Box<ConsentPage>),
}

/// `GET /oauth/authorize`. `Err` means the request cannot be answered to the
/// client and is shown to the user. The second value, when present, is a new
/// browser-binding cookie to set.
pub async fn start(
    app: &App,
    params: &Params,
    browser_cookie: Option<&str>,
    actor: &Actor,
) -> Result<(Step, Option<String>)> {
    let request = match request::validate(app, params).await {
        Ok((request, _client)) => request,
        Err(Refusal::Page(error)) => return Err(error),
        Err(Refusal::Redirect { redirect_uri, state, error }) => {
            tracing::info!(
                error = error.code(),
                reason = error.description().unwrap_or_default(),
                "authorization request refused"
            );
            let url = redirect::error(&redirect_uri, &error, state.as_deref(), app.issuer());
            return Ok((Step::ToClient(url), None));
        }
    };
    let Some(provider) = app.login.clone() else {
        tracing::warn!(
            "authorization request refused: no login method is configured (SEKISHO_DEV_LOGIN or an upstream provider)"
        );
        let error = Error::Unavailable("no login method is configured".into());
        let url = redirect::error(&request.redirect_uri, &error, request.state.as_deref(), app.issuer());
        return Ok((Step::ToClient(url), None));
    };
    let (browser, new_cookie) = pending::browser_binding(browser_cookie)?;
    let id = pending::create(app, &request, &browser).await?;
    let step = match provider.start(app, &id).await? {
        LoginStart::Authenticated(identity) => {
            login::complete(app, &id, &identity, actor).await?;
            proceed(app, pending::load_own(app, &id).await?, actor).await?
        }
        LoginStart::Redirect(url) => Step::Login(url),
    };
    Ok((step, new_cookie))
}

/// `GET /oauth/authorize/continue?request=…`: back from an upstream login.
pub async fn resume(app: &App, request_id: &str, browser_cookie: Option<&str>, actor: &Actor) -> Result<Step> {
    let pending = pending::load(app, request_id, browser_cookie).await?;
    proceed(app, pending, actor).await
}

/// `POST /oauth/authorize/consent`: the user's answer.
pub async fn decide(app: &App, form: &Params, browser_cookie: Option<&str>, actor: &Actor) -> Result<Step> {
    let pending = pending::load(app, form.required("request")?, browser_cookie).await?;
    pending::check_csrf(app, &pending, form.required("csrf")?)?;
    let subject = logged_in(&pending)?;
    let url = match form.required("decision")? {
        "approve" => code::issue(app, &pending, &subject, ConsentBasis::Granted, actor).await?,
        "deny" => code::deny(app, &pending, &subject, actor).await?,
        _ => return Err(Error::invalid_request("decision must be approve or deny")),
    };
    Ok(Step::ToClient(url))
}

/// After login: issue the code if consent is already there, else ask.
async fn proceed(app: &App, pending: Pending, actor: &Actor) -> Result<Step> {
    let subject = logged_in(&pending)?;
    // The client may have been revoked, or its document changed, meanwhile.
    let client = clients::find(app, &pending.request.client_id).await?;
    let basis = if app.config.oauth.dev_auto_consent {
        Some(ConsentBasis::Automatic)
    } else if !pending.request.prompt_consent && consent::is_remembered(app, &subject, &pending.request).await? {
        Some(ConsentBasis::Remembered)
    } else {
        None
    };
    match basis {
        Some(basis) => Ok(Step::ToClient(code::issue(app, &pending, &subject, basis, actor).await?)),
        None => {
            let csrf = pending::new_csrf(app, &pending.id).await?;
            let page = consent::page(app, &pending, &client, csrf).await?;
            Ok(Step::Consent(Box::new(page)))
        }
    }
}

fn logged_in(pending: &Pending) -> Result<String> {
    pending.subject.clone().ok_or_else(|| Error::invalid_request("nobody has logged in for this authorization request"))
}
