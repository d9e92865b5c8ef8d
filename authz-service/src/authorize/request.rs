//! Validation of an authorization request (SPEC A5, RFC 6749 §4.1.1, §4.1.2.1).
//!
//! The order matters: until the client and its redirect URI are established,
//! an error is shown to the user and never sent anywhere (a forged request
//! must not turn the server into an open redirector). After that, errors go
//! back to the client's redirect URI with `state` and `iss`.

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::clients::{self, Client, GrantType};
use crate::error::{Error, ErrorCode, Result};
use crate::params::Params;
use crate::pkce;
use crate::targets;

/// A request that passed every check, as it is kept while the user logs in
/// and decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must too).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub code_challenge: String,
    /// Canonical resource URIs.
    pub resources: Vec<String>,
    /// Instance ids, same order as `resources`.
    pub instances: Vec<String>,
    /// Resource scopes (never `offline_access`).
    pub scope: String,
    /// The client asked for `offline_access`.
    pub offline_access: bool,
    /// A refresh token will be issued with the access token.
    pub refresh: bool,
    /// `prompt=consent`: ask even if the user approved this before (clients
    /// send it with `offline_access`, as OpenID Connect requires).
    #[serde(default)]
    pub prompt_consent: bool,
}

/// Why a request is refused, and where the refusal goes.
#[derive(Debug)]
pub enum Refusal {
    /// Shown to the user: the client or redirect URI is not established.
    Page(Error),
    /// Sent to the client's (validated) redirect URI.
    Redirect { redirect_uri: String, state: Option<String>, error: Error },
}

/// Longest `state` we carry; it comes back in a URL.
const MAX_STATE: usize = 2048;

pub async fn validate(app: &App, params: &Params) -> std::result::Result<(AuthorizationRequest, Client), Refusal> {
    let client_id = params.required("client_id").map_err(Refusal::Page)?.to_owned();
    let client = clients::find(app, &client_id).await.map_err(Refusal::Page)?;
    let requested_uri = params.one("redirect_uri").map_err(Refusal::Page)?;
    let redirect_uri = client.redirect_uri(requested_uri).ok_or_else(|| {
        Refusal::Page(Error::invalid_request(match requested_uri {
            Some(_) => "redirect_uri is not registered for this client",
            None => "redirect_uri is required: this client registered several",
        }))
    })?;
    // From here on the client is told.
    let state = params.one("state").ok().flatten().map(str::to_owned);
    let refuse = |error: Error| Refusal::Redirect { redirect_uri: redirect_uri.clone(), state: state.clone(), error };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE) {
        return Err(refuse(Error::invalid_request(format!("state is longer than {MAX_STATE} characters"))));
    }
    params.one("state").map_err(refuse)?;
    checked(app, params, &client, redirect_uri.clone(), requested_uri.is_some(), state.clone())
        .await
        .map(|request| (request, client.clone()))
        .map_err(refuse)
}

async fn checked(
    app: &App,
    params: &Params,
    client: &Client,
    redirect_uri: String,
    redirect_uri_given: bool,
    state: Option<String>,
) -> Result<AuthorizationRequest> {
    match params.required("response_type")? {
        "code" => {}
        other => {
            return Err(Error::refused(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported; use code"),
            ));
        }
    }
    if !client.metadata.allows(GrantType::AuthorizationCode) {
        return Err(Error::unauthorized_client("this client did not register the authorization_code grant"));
    }
    // OpenID Connect's `prompt` is a space-separated list; only `consent`
    // changes anything here (the login is always interactive or development).
    let prompt_consent = params.one("prompt")?.is_some_and(|p| p.split(' ').any(|v| v == "consent"));
    let code_challenge = pkce::check_challenge(params.one("code_challenge")?, params.one("code_challenge_method")?)?;
    let instances = targets::resolve_resources(app, &params.all("resource")).await?;
    let registered = client.metadata.registered_scope();
    let (scope, offline_access) = match targets::parse_scope(params.one("scope")?)? {
        Some(requested) => {
            if let Some(registered) = &registered
                && !requested.resource_scope.is_subset_of(registered)
            {
                return Err(Error::invalid_scope(format!(
                    "this client registered the scope `{registered}`; it may not ask for more"
                )));
            }
            (requested.resource_scope, requested.offline_access)
        }
        None => (targets::default_scope(app, registered.as_ref(), &instances)?, false),
    };
    if scope.is_empty() {
        return Err(Error::invalid_scope("offline_access alone grants nothing; name a resource scope too"));
    }
    targets::check_offered(&instances, &scope)?;
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri,
        redirect_uri_given,
        state,
        code_challenge,
        resources: targets::resource_uris(app, &instances),
        instances: instances.into_iter().map(|i| i.id).collect(),
        scope: scope.to_string(),
        offline_access,
        // MCP 2026-07-28: the server decides. A refresh token goes to clients
        // that registered the refresh_token grant, and to any that asked for
        // offline_access.
        refresh: client.metadata.allows(GrantType::RefreshToken) || offline_access,
        prompt_consent,
    })
}
