//! OAuth test helpers: the service on a real listener, driven over HTTP with
//! reqwest as an MCP client would (redirects are not followed, so every hop is
//! visible), plus PKCE, registration and token-request shortcuts.
//!
//! Included with `#[path = "common/oauth.rs"] mod oauth;` next to `mod common;`.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use sekisho_authz::App;
use sekisho_authz::crypto::random;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

pub const DEMO: &str = "http://127.0.0.1:8080/mcp/demo";
pub const OTHER: &str = "http://127.0.0.1:8080/mcp/other";
pub const CALLBACK: &str = "http://127.0.0.1:33418/callback";

/// Development login with automatic consent: one GET ends at the client.
pub const HEADLESS: [(&str, &str); 2] = [("SEKISHO_DEV_LOGIN", "1"), ("SEKISHO_DEV_AUTO_CONSENT", "1")];

/// The service's router on 127.0.0.1, with peer addresses like `serve`.
pub struct Server {
    pub base: String,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve(app: &App) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let service = sekisho_authz::http::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, service).await;
    });
    Server { base: format!("http://{addr}"), task }
}

/// A client that does not follow redirects.
/// In `cargo test --workspace` reqwest is built with the e2e harness's
/// `rustls-no-provider` feature, and building a client then panics unless a
/// provider is installed; alone, this crate's reqwest has no TLS at all.
/// Installing fails only when one is installed already, which is as good.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// A response read completely.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    pub async fn of(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        if let Ok(json) = serde_json::from_str(&text) {
            crate::common::scan::register_json(&json);
        }
        Answer { status, headers, text }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|_| panic!("{}: not JSON: {}", self.status, self.text))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts an RFC 6749 JSON error.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.json()["error"], code, "{self:?}");
        assert!(self.header("content-type").starts_with("application/json"), "{self:?}");
    }

    /// The `Location` of a redirect.
    pub fn location(&self) -> Url {
        assert!(self.status.is_redirection(), "{self:?}");
        Url::parse(self.header("location")).expect("absolute Location")
    }

    /// Asserts an HTML error page (never a redirect) naming `code`.
    pub fn assert_error_page(&self, code: &str) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{self:?}");
        assert!(self.headers.get("location").is_none(), "{self:?}");
        assert!(self.header("content-type").starts_with("text/html"), "{self:?}");
        assert!(self.text.contains(code), "{self:?}");
        assert!(self.header("content-security-policy").contains("frame-ancestors 'none'"));
    }
}

/// A query parameter of a URL.
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(n, _)| n == name).map(|(_, v)| v.into_owned())
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(random::bytes::<32>().expect("randomness"));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Pkce { verifier, challenge }
}

/// A registered client as the registration response describes it.
#[derive(Debug, Clone)]
pub struct Registered {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub body: Value,
}

/// `POST /oauth/register` with `body`; asserts 201.
pub async fn register(server: &Server, body: Value) -> Registered {
    let answer = post_json(server, "/oauth/register", &body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    let body = answer.json();
    Registered {
        client_id: body["client_id"].as_str().expect("client_id").to_owned(),
        client_secret: body["client_secret"].as_str().map(str::to_owned),
        body,
    }
}

/// What the Python SDK registers: a confidential client with refresh tokens.
pub async fn register_python_style(server: &Server) -> Registered {
    register(
        server,
        json!({
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "client_name": "Python SDK client",
            "scope": "mcp:read mcp:write",
            "application_type": "native",
        }),
    )
    .await
}

/// A public client (TypeScript SDK style) that may refresh.
pub async fn register_public(server: &Server) -> Registered {
    register(
        server,
        json!({
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "TS client",
        }),
    )
    .await
}

pub async fn post_json(server: &Server, path: &str, body: &Value) -> Answer {
    Answer::of(http().post(format!("{}{path}", server.base)).json(body).send().await.expect("request")).await
}

/// A form POST, optionally with `Authorization: Basic`.
pub async fn post_form(server: &Server, path: &str, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Answer {
    let mut request = http().post(format!("{}{path}", server.base)).form(form);
    if let Some((id, secret)) = basic {
        request = request.header(header::AUTHORIZATION, format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))));
    }
    Answer::of(request.send().await.expect("request")).await
}

/// `POST /oauth/token`, form-encoded as real clients send it.
pub async fn token(server: &Server, form: &[(&str, &str)]) -> Answer {
    post_form(server, "/oauth/token", form, None).await
}

pub async fn get(server: &Server, path_and_query: &str, cookie: Option<&str>) -> Answer {
    let mut request = http().get(format!("{}{path_and_query}", server.base));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    Answer::of(request.send().await.expect("request")).await
}

/// `/oauth/authorize?…` for `params`.
pub fn authorize_path(params: &[(&str, &str)]) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("/oauth/authorize?{query}")
}

/// The usual authorization request of a client.
pub fn code_request<'a>(client_id: &'a str, pkce: &'a Pkce, scope: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("code_challenge", &pkce.challenge),
        ("code_challenge_method", "S256"),
        ("resource", DEMO),
        ("scope", scope),
        ("state", state),
    ]
}

/// Runs the headless authorization (dev login + auto-consent) and returns the code.
pub async fn authorize_code(server: &Server, client_id: &str, pkce: &Pkce, scope: &str) -> String {
    let answer = get(server, &authorize_path(&code_request(client_id, pkce, scope, "xyz")), None).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{answer:?}");
    let location = answer.location();
    assert_eq!(param(&location, "state").as_deref(), Some("xyz"));
    let code = param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"));
    crate::common::scan::register("code", &code);
    code
}

/// Redeems `code` for the client (secret in the body when it has one).
pub async fn redeem(server: &Server, client: &Registered, code: &str, verifier: &str) -> Answer {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", verifier),
        ("redirect_uri", CALLBACK),
        ("resource", DEMO),
        ("client_id", client.client_id.as_str()),
    ];
    if let Some(secret) = &client.client_secret {
        form.push(("client_secret", secret));
    }
    token(server, &form).await
}

/// Refreshes with `refresh_token` plus `extra` parameters.
pub async fn refresh(server: &Server, client: &Registered, refresh_token: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client.client_id.as_str()),
    ];
    if let Some(secret) = &client.client_secret {
        form.push(("client_secret", secret));
    }
    form.extend_from_slice(extra);
    token(server, &form).await
}

/// The full headless flow: code, then tokens. Returns the token response.
pub async fn tokens_for(server: &Server, client: &Registered, scope: &str) -> Value {
    let pkce = pkce();
    let code = authorize_code(server, &client.client_id, &pkce, scope).await;
    let answer = redeem(server, client, &code, &pkce.verifier).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.json()
}

/// The `jti`s in the filter policy's revocation list.
pub async fn revoked_jtis(server: &Server) -> Vec<String> {
    let policy = get(server, "/internal/v1/filter-policy", None).await;
    assert_eq!(policy.status, StatusCode::OK, "{policy:?}");
    policy.json()["revoked"]
        .as_array()
        .map(|list| list.iter().map(|r| r["jti"].as_str().expect("jti").to_owned()).collect())
        .unwrap_or_default()
}

/// The `jti` claim of an access token (signature not checked: tests that care
/// use `common::verify`).
pub fn jti_of(access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).expect("a JWS");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON");
    claims["jti"].as_str().expect("jti").to_owned()
}
