//! An OAuth client for scenarios, speaking to a base URL (Envoy's, or one
//! service replica's directly): dynamic registration, the authorization code
//! flow with PKCE through the development login (with or without the consent
//! page), code redemption and refresh. What a native MCP client does, with
//! every step visible to the test; the real SDKs are tested elsewhere.

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use reqwest::blocking::Client;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::random;

/// A loopback redirect URI; nothing needs to listen there: the test reads
/// the redirect's `Location` instead of following it.
pub const REDIRECT_URI: &str = "http://127.0.0.1:33419/callback";

/// A public client from dynamic registration.
#[derive(Debug, Clone)]
pub struct Registered {
    pub client_id: String,
    pub registration_access_token: String,
}

/// `POST {base}/oauth/register` for a public native client that may refresh.
pub fn register(http: &Client, base: &str, name: &str) -> Result<Registered> {
    let body = json!({
        "client_name": name,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let answer = send_json(http.post(format!("{base}/oauth/register")).json(&body), 201, "registration")?;
    Ok(Registered {
        client_id: string(&answer, "client_id")?,
        registration_access_token: string(&answer, "registration_access_token")?,
    })
}

/// A PKCE verifier and its S256 challenge.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Result<Pkce> {
        let verifier = URL_SAFE_NO_PAD.encode(random::bytes::<32>()?);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Ok(Pkce { verifier, challenge })
    }
}

/// The authorization request URL at `base` for `resource` and `scope`.
pub fn authorize_url(base: &str, client: &Registered, pkce: &Pkce, resource: &str, scope: &str) -> Result<String> {
    let url = Url::parse_with_params(
        &format!("{base}/oauth/authorize"),
        [
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", resource),
            ("scope", scope),
            ("state", "scenario-state"),
        ],
    )?;
    Ok(url.into())
}

/// Where `GET /oauth/authorize` ended.
#[derive(Debug)]
pub enum Authorization {
    /// Redirected to the client (auto-consent, or consent remembered).
    Redirected(Redirect),
    /// The consent page: the user has logged in; the request waits, stored
    /// server-side, for the form to be posted with the browser's cookie.
    Consent(ConsentPage),
}

#[derive(Debug, Clone)]
pub struct ConsentPage {
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
    /// `name=value` of the browser-binding cookie.
    pub cookie: String,
    pub request: String,
    pub csrf: String,
}

/// The authorization response, as the client's redirect URI receives it.
#[derive(Debug, Clone)]
pub struct Redirect {
    pub location: String,
}

impl Redirect {
    pub fn param(&self, name: &str) -> Option<String> {
        let url = Url::parse(&self.location).ok()?;
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The code, after checking the redirect goes to the client with the
    /// expected `state` and `iss`.
    pub fn code(&self, issuer: &str) -> Result<String> {
        if !self.location.starts_with(REDIRECT_URI) {
            bail!("redirected elsewhere than the client: {}", self.location);
        }
        if self.param("state").as_deref() != Some("scenario-state") || self.param("iss").as_deref() != Some(issuer) {
            bail!("the authorization response lacks the state or the issuer {issuer}: {}", self.location);
        }
        match self.param("code") {
            Some(code) => Ok(code),
            None => bail!("no code in the authorization response: {}", self.location),
        }
    }
}

/// `GET` the authorization URL as a browser without a session would.
pub fn authorize(http: &Client, url: &str) -> Result<Authorization> {
    let response = http.get(url).send().with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let html = response.text()?;
    match status {
        302 | 303 => Ok(Authorization::Redirected(Redirect { location: location(&headers)? })),
        200 => {
            let Some(cookie) = headers
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|v| v.split(';').next().filter(|pair| pair.starts_with("sekisho_browser=")))
                .map(str::to_owned)
            else {
                bail!("the consent page set no browser cookie: {headers:?}");
            };
            let request = hidden_input(&html, "request")?;
            let csrf = hidden_input(&html, "csrf")?;
            Ok(Authorization::Consent(ConsentPage { headers, html, cookie, request, csrf }))
        }
        other => bail!("GET /oauth/authorize answered {other}: {html}"),
    }
}

/// Posts the consent form (`approve` or `deny`) at `base` with the page's cookie.
pub fn decide(http: &Client, base: &str, page: &ConsentPage, decision: &str) -> Result<Redirect> {
    let form = [("request", page.request.as_str()), ("csrf", page.csrf.as_str()), ("decision", decision)];
    let response = http
        .post(format!("{base}/oauth/authorize/consent"))
        .header("cookie", &page.cookie)
        .form(&form)
        .send()
        .context("POST /oauth/authorize/consent")?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    if status != 303 {
        bail!("the consent form answered {status}: {}", response.text().unwrap_or_default());
    }
    Ok(Redirect { location: location(&headers)? })
}

/// `POST {base}/oauth/token` (form-encoded, as real clients send it); the
/// status and the JSON answer.
pub fn token(http: &Client, base: &str, form: &[(&str, &str)]) -> Result<(u16, Value)> {
    let response = http.post(format!("{base}/oauth/token")).form(form).send().context("POST /oauth/token")?;
    let status = response.status().as_u16();
    let text = response.text()?;
    let value = serde_json::from_str(&text).with_context(|| format!("the token endpoint answered {status}: {text}"))?;
    Ok((status, value))
}

/// Redeems `code`; fails unless an access token comes back.
pub fn redeem(
    http: &Client,
    base: &str,
    client: &Registered,
    code: &str,
    pkce: &Pkce,
    resource: &str,
) -> Result<Value> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", client.client_id.as_str()),
        ("code_verifier", pkce.verifier.as_str()),
        ("resource", resource),
    ];
    tokens(token(http, base, &form)?, "code redemption")
}

/// Uses `refresh_token`; fails unless new tokens come back.
pub fn refresh(http: &Client, base: &str, client: &Registered, refresh_token: &str) -> Result<Value> {
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", client.client_id.as_str())];
    tokens(token(http, base, &form)?, "refresh")
}

fn tokens((status, answer): (u16, Value), what: &str) -> Result<Value> {
    if status != 200 || answer.get("access_token").and_then(Value::as_str).is_none() {
        bail!("{what} answered {status}: {answer}");
    }
    Ok(answer)
}

fn location(headers: &reqwest::header::HeaderMap) -> Result<String> {
    match headers.get("location").and_then(|v| v.to_str().ok()) {
        Some(location) => Ok(location.to_owned()),
        None => bail!("a redirect without Location: {headers:?}"),
    }
}

/// The value of `<input type="hidden" name="{name}" value="…">`.
fn hidden_input(html: &str, name: &str) -> Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let Some(start) = html.find(&marker).map(|at| at + marker.len()) else {
        bail!("the consent page has no {name} field: {html}");
    };
    match html[start..].find('"') {
        Some(end) => Ok(html[start..start + end].to_owned()),
        None => bail!("the consent page's {name} field is not closed"),
    }
}

fn send_json(request: reqwest::blocking::RequestBuilder, expected: u16, what: &str) -> Result<Value> {
    let response = request.send().with_context(|| what.to_owned())?;
    let status = response.status().as_u16();
    let text = response.text()?;
    if status != expected {
        bail!("{what} answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("{what} answered no JSON: {text}"))
}

fn string(value: &Value, field: &str) -> Result<String> {
    match value.get(field).and_then(Value::as_str) {
        Some(s) => Ok(s.to_owned()),
        None => bail!("no {field} in {value}"),
    }
}
