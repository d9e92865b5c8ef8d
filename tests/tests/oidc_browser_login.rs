//! The whole user login through Envoy in headless Chromium, with a real
//! OpenID provider upstream (issue 4's acceptance, SPEC U1–U3): the npm
//! `oidc-provider` on loopback ([`OidcProvider`]) and a stack configured with
//! `SEKISHO_OIDC_ISSUER` (no development login, no auto-consent).
//!
//! The MCP client is the TypeScript SDK with an `OAuthClientProvider` whose
//! redirect is a real browser (`tests/clients/node/oidc_login_browser.mjs`):
//! 401 → discovery → DCR → Sekisho → the provider's sign-in and consent pages
//! → Sekisho's callback and consent page → the client's loopback redirect →
//! code → tokens → `tools/list`, `tools/call` on `/mcp/demo`.
//!
//! Then the provider is stopped: after the breaker's threshold a login fails
//! at once (`temporarily_unavailable`, `Retry-After`), while the tokens from
//! the browser login, a refresh, client credentials and `/mcp/demo` keep
//! working through Envoy.
//! The provider comes back: half-open, closed, and the browser login works
//! again. Every transition is in the audit log.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use sekisho_e2e::{Instance, OidcProvider, OidcProviderOptions, Ports, Stack, StackOptions, clients};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Chromium start-up and five pages on 2 busy cores.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);
const BREAKER_FAILURES: u32 = 2;
const BREAKER_COOLDOWN: Duration = Duration::from_secs(3);
/// What "fails fast" means (issue 4).
const FAST: Duration = Duration::from_millis(100);
const CLIENT_NAME: &str = "Sekisho OIDC Browser Check";

fn start() -> (OidcProvider, Stack) {
    // Before starting anything: missing tools fail at once, saying how to install them.
    clients::node().unwrap();
    clients::chromium().unwrap();
    let ports = Ports::free().unwrap();
    let provider = OidcProvider::start(OidcProviderOptions::for_stack(ports.envoy).unwrap()).unwrap();
    let mut authz_env = provider.authz_env();
    authz_env.push(("SEKISHO_BREAKER_FAILURES".into(), BREAKER_FAILURES.to_string()));
    authz_env.push(("SEKISHO_BREAKER_COOLDOWN_SECS".into(), BREAKER_COOLDOWN.as_secs().to_string()));
    let options = StackOptions {
        ports: Some(ports),
        instances: vec![Instance::new("demo", "oauth")],
        authz_env,
        ..StackOptions::default()
    };
    let stack = Stack::start(options).expect("the stack starts");
    (provider, stack)
}

/// The browser login with the SDK; its report.
fn browser_login(stack: &Stack, provider: &OidcProvider, name: &str, tokens_file: &Path) -> Value {
    let profile = stack.data_dir().join(format!("chromium-profile-{name}"));
    std::fs::create_dir_all(&profile).unwrap();
    let chromium = clients::chromium().unwrap();
    let (login, password) = OidcProvider::USER;
    let run = stack
        .run_node_client(
            "oidc_login_browser.mjs",
            &[
                ("SEKISHO_MCP_URL", &format!("{}/mcp/demo", stack.base_url())),
                ("SEKISHO_ISSUER", stack.base_url()),
                ("SEKISHO_PROVIDER_ISSUER", &provider.issuer()),
                ("SEKISHO_OIDC_LOGIN", login),
                ("SEKISHO_OIDC_PASSWORD", password),
                ("SEKISHO_CHROMIUM", chromium.to_str().unwrap()),
                ("SEKISHO_PROFILE_DIR", profile.to_str().unwrap()),
                ("SEKISHO_TOKENS_FILE", tokens_file.to_str().unwrap()),
            ],
            BROWSER_TIMEOUT,
        )
        .unwrap();
    let report = run.expect_ok().clone();
    assert_login_report(&report);
    report
}

/// The browser went Sekisho → provider (sign in, consent) → Sekisho (consent)
/// → client, and the SDK's calls reached the demo server as alice.
fn assert_login_report(report: &Value) {
    let pages: Vec<(String, String)> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["at"].as_str().unwrap().to_owned(), p["heading"].as_str().unwrap().to_owned()))
        .collect();
    let kinds: Vec<&str> = pages.iter().map(|(at, _)| at.as_str()).collect();
    assert_eq!(kinds, ["provider", "provider", "sekisho", "client"], "{report}");
    assert_eq!(pages[0].1, "Sign in", "{report}");
    assert_eq!(pages[1].1, "Authorize", "the provider's consent page: {report}");
    assert!(pages[2].1.contains(CLIENT_NAME), "Sekisho's consent page names the client: {report}");
    assert!(report["pages"][0]["path"].as_str().unwrap().starts_with("/interaction/"), "{report}");
    assert_eq!(report["pages"][3]["path"], "/callback", "{report}");
    assert_eq!(report["redirects_received"], 1, "{report}");

    let tools: Vec<&str> = report["tools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for tool in ["whoami", "echo"] {
        assert!(tools.contains(&tool), "tools/list lacks {tool}: {report}");
    }
    assert_eq!(report["echo_is_error"], false, "{report}");
    let headers = &report["whoami"]["headers"];
    assert_eq!(headers["x-sekisho-auth"], "jwt", "{report}");
    assert_eq!(headers["x-sekisho-subject"], OidcProvider::USER.0, "{report}");
    assert_eq!(headers["x-sekisho-client-id"], report["client_id"], "{report}");
    assert_eq!(report["whoami"]["authorization_present"], false, "{report}");
    assert_eq!(report["has_refresh_token"], true, "{report}");
}

fn read_tokens(file: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(file).expect("the client stored its tokens")).unwrap()
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

/// A client registered just to start logins; nothing listens at its redirect URI.
fn register_probe(stack: &Stack) -> String {
    let body = json!({
        "client_name": "breaker probe",
        "redirect_uris": ["http://127.0.0.1:9/callback"],
        "token_endpoint_auth_method": "none",
    });
    let response = stack.http().post(format!("{}/oauth/register", stack.base_url())).json(&body).send().unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().unwrap()["client_id"].as_str().unwrap().to_owned()
}

/// `GET /oauth/authorize` through Envoy: (status, Location, Retry-After).
fn get(stack: &Stack, url: &str) -> (u16, String, Option<String>) {
    let response = stack.http().get(url).send().unwrap();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    (response.status().as_u16(), header("location").unwrap_or_default(), header("retry-after"))
}

fn authorize_url(stack: &Stack, client_id: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(b"a verifier nobody redeems"));
    Url::parse_with_params(
        &format!("{}/oauth/authorize", stack.base_url()),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "probe"),
            ("resource", &format!("{}/mcp/demo", stack.base_url())),
        ],
    )
    .unwrap()
    .to_string()
}

/// An operator-registered machine client gets a token through Envoy: (client id, token).
fn client_credentials_token(stack: &Stack) -> (String, String) {
    let args = ["clients", "register", "--name", "batch", "--confidential", "--grant-type", "client_credentials"];
    let registered: Value = serde_json::from_str(
        &stack.authz_cli(&[&args[..], &["--scope", "mcp:read mcp:write", "--json"]].concat()).unwrap(),
    )
    .unwrap();
    let (id, secret) = (registered["client_id"].as_str().unwrap(), registered["client_secret"].as_str().unwrap());
    let response = stack
        .http()
        .post(format!("{}/oauth/token", stack.base_url()))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_encode(&[
            ("grant_type", "client_credentials"),
            ("resource", &format!("{}/mcp/demo", stack.base_url())),
        ]))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "client_credentials while the provider is down");
    let token = response.json::<Value>().unwrap()["access_token"].as_str().unwrap().to_owned();
    (id.to_owned(), token)
}

fn health(stack: &Stack) -> Value {
    stack.http().get(format!("{}/health", stack.authz_url())).send().unwrap().json().unwrap()
}

/// `tools/call whoami` on /mcp/demo through Envoy with `token`: the subject.
fn whoami(stack: &Stack, token: &str) -> String {
    let session = stack.session("/mcp/demo", Some(token)).unwrap();
    let listed = session.request("tools/list", json!({})).unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    let text = session.call_tool("whoami", json!({})).unwrap().tool_text().unwrap();
    let report: Value = serde_json::from_str(&text).unwrap();
    report["headers"]["x-sekisho-subject"].as_str().unwrap().to_owned()
}

#[test]
fn a_user_logs_in_upstream_in_a_browser_and_mcp_keeps_working_while_the_provider_is_down() {
    let (mut provider, stack) = start();
    let (user, _) = OidcProvider::USER;

    // 1. The whole login in the browser.
    let tokens_file = stack.data_dir().join("client-tokens.json");
    let report = browser_login(&stack, &provider, "first", &tokens_file);
    let tokens = read_tokens(&tokens_file);
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let token_claims = claims(&access_token);
    assert_eq!(token_claims["sub"], user, "{token_claims}");
    assert_eq!(token_claims["iss"], stack.base_url());
    assert_eq!(token_claims["aud"], format!("{}/mcp/demo", stack.base_url()));

    // The user record: created at the callback, bound to the provider's subject.
    let users: Value = serde_json::from_str(&stack.authz_cli(&["users", "list", "--json"]).unwrap()).unwrap();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["subject"], token_claims["sub"], "the token's sub is the user's id");
    assert_eq!(users[0]["issuer"], provider.issuer());
    assert_eq!(users[0]["upstream_subject"], user);
    assert!(!users.iter().any(|u| u.to_string().contains("alice@example.com")), "no PII in the listing");
    let logins = stack.audit_events(Some("login.succeeded")).unwrap();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["subject"], user);
    assert_eq!(logins[0]["client_id"], report["client_id"]);
    assert_eq!(logins[0]["details"]["provider"], "oidc");

    // 2. The provider stops. Each login start fails its discovery fetch (the
    // last good document still sends the browser on) until the breaker opens.
    provider.stop();
    let probe = register_probe(&stack);
    for attempt in 1..=BREAKER_FAILURES {
        let (status, location, _) = get(&stack, &authorize_url(&stack, &probe));
        assert_eq!(status, 302, "attempt {attempt}");
        assert!(location.starts_with(&provider.issuer()), "attempt {attempt}: {location}");
    }
    let h = health(&stack);
    assert_eq!((h["status"].as_str(), h["provider"]["breaker"].as_str()), (Some("degraded"), Some("open")), "{h}");

    // Open: a login fails fast, back at the client with temporarily_unavailable.
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, unavailable, _) = get(&stack, &authorize_url(&stack, &probe));
        assert_eq!(status, 302);
        assert!(unavailable.starts_with(&format!("{}/oauth/login/unavailable?request=", stack.base_url())));
        let (status, at_client, retry_after) = get(&stack, &unavailable);
        took.push(started.elapsed());
        assert_eq!(status, 302);
        let at_client = Url::parse(&at_client).unwrap();
        let param = |name: &str| at_client.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        assert_eq!(param("error").as_deref(), Some("temporarily_unavailable"), "{at_client}");
        assert_eq!(param("state").as_deref(), Some("probe"));
        assert_eq!(param("iss").as_deref(), Some(stack.base_url()));
        let retry: u64 = retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=BREAKER_COOLDOWN.as_secs()).contains(&retry), "Retry-After {retry}");
    }
    took.sort();
    eprintln!("login refused while open, through Envoy (authorize + unavailable): {took:?}");
    assert!(took[1] < FAST, "the median refusal took {:?} (all: {took:?})", took[1]);

    // What does not need the provider keeps working: the token from the
    // browser login on /mcp/demo, a refresh, and the refreshed token.
    assert_eq!(whoami(&stack, &access_token), user);
    let form = form_encode(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", tokens["client_id"].as_str().unwrap()),
    ]);
    let response = stack
        .http()
        .post(format!("{}/oauth/token", stack.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "refresh while the provider is down");
    let refreshed: Value = response.json().unwrap();
    let refreshed_token = refreshed["access_token"].as_str().unwrap();
    assert_ne!(refreshed_token, access_token);
    assert_eq!(whoami(&stack, refreshed_token), user);
    let machine = client_credentials_token(&stack);
    assert_eq!(whoami(&stack, &machine.1), machine.0, "a client_credentials token is its client's");

    // 3. The provider is back; after the cool-down a login is the trial
    // (half-open), it succeeds (closed), in the browser like the first.
    provider.start_again().unwrap();
    std::thread::sleep(BREAKER_COOLDOWN + Duration::from_millis(200));
    let again = stack.data_dir().join("client-tokens-again.json");
    browser_login(&stack, &provider, "again", &again);
    assert_eq!(claims(read_tokens(&again)["access_token"].as_str().unwrap())["sub"], user);
    let h = health(&stack);
    assert_eq!((h["status"].as_str(), h["provider"]["breaker"].as_str()), (Some("ok"), Some("closed")), "{h}");

    let mut transitions: Vec<String> = stack
        .audit_events(None)
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str().filter(|e| e.starts_with("breaker.")).map(str::to_owned))
        .collect();
    transitions.reverse();
    assert_eq!(transitions, ["breaker.opened", "breaker.half_open", "breaker.closed"]);
    let users: Value = serde_json::from_str(&stack.authz_cli(&["users", "list", "--json"]).unwrap()).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1, "the second login updated the same user: {users}");
    assert_eq!(stack.audit_events(Some("login.succeeded")).unwrap().len(), 2);
    assert!(provider.exited().is_none(), "the provider is running:\n{}", provider.log());
}
