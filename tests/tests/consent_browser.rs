//! The consent page in a real browser (SPEC A5, S5; issue 3's acceptance):
//! Debian's headless Chromium, driven by playwright-core
//! (`tests/clients/node/consent_browser.mjs`), with the development login but
//! without auto-consent, so the page is shown.
//!
//! The test plays the client: it registers through DCR, builds the
//! authorization URL with PKCE, listens on its loopback redirect URI
//! ([`RedirectReceiver`]) and, after Approve, redeems the code at
//! `/oauth/token` and calls `/mcp/demo` with the token. The browser run
//! saves a screenshot of the page in the stack's data directory
//! (`consent-<decision>.png`; kept with `SEKISHO_E2E_KEEP=1`).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Url;
use sekisho_e2e::clients::{self, ReceivedRedirect, RedirectReceiver};
use sekisho_e2e::{Instance, Stack, StackOptions, mcp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Chromium start-up, the page, a click, the redirect; generous for 2 cores.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(120);
const CLIENT_NAME: &str = "Consent Check App";

struct Client {
    id: String,
    redirect: RedirectReceiver,
}

fn stack() -> Stack {
    // Before starting anything: missing tools fail at once, saying how to install them.
    clients::node().unwrap();
    clients::chromium().unwrap();
    let options = StackOptions {
        instances: vec![Instance::new("demo", "oauth"), Instance::new("other", "oauth")],
        authz_env: vec![("SEKISHO_DEV_LOGIN".into(), "1".into())],
        ..StackOptions::default()
    };
    Stack::start(options).expect("the stack starts")
}

/// Dynamic registration, as a native app with a loopback redirect URI would.
fn register(stack: &Stack) -> Client {
    let redirect = RedirectReceiver::start().unwrap();
    let body = json!({
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect.redirect_uri()],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let response = stack.http().post(format!("{}/oauth/register", stack.base_url())).json(&body).send().unwrap();
    assert_eq!(response.status(), 201, "registration");
    let registered: Value = response.json().unwrap();
    Client { id: registered["client_id"].as_str().unwrap().to_owned(), redirect }
}

/// (authorization URL, code verifier).
fn authorization_url(stack: &Stack, client: &Client, state: &str) -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(random_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let url = Url::parse_with_params(
        &format!("{}/oauth/authorize", stack.base_url()),
        &[
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", client.redirect.redirect_uri().as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", state),
            ("resource", format!("{}/mcp/demo", stack.base_url()).as_str()),
            ("scope", "mcp:read mcp:write"),
        ],
    )
    .unwrap();
    (url.to_string(), verifier)
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    let mut urandom = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut urandom, &mut bytes).unwrap();
    bytes
}

/// Opens `url` in a fresh Chromium profile, clicks `decision`; the report.
fn browse(stack: &Stack, client: &Client, url: &str, decision: &str) -> (Value, PathBuf) {
    let chromium = clients::chromium().unwrap();
    let profile = stack.data_dir().join(format!("chromium-profile-{decision}"));
    std::fs::create_dir_all(&profile).unwrap();
    let screenshot = stack.data_dir().join(format!("consent-{decision}.png"));
    let run = stack
        .run_node_client(
            "consent_browser.mjs",
            &[
                ("SEKISHO_AUTHORIZE_URL", url),
                ("SEKISHO_REDIRECT_URI", &client.redirect.redirect_uri()),
                ("SEKISHO_DECISION", decision),
                ("SEKISHO_CHROMIUM", chromium.to_str().unwrap()),
                ("SEKISHO_PROFILE_DIR", profile.to_str().unwrap()),
                ("SEKISHO_SCREENSHOT", screenshot.to_str().unwrap()),
            ],
            BROWSER_TIMEOUT,
        )
        .unwrap();
    (run.expect_ok().clone(), screenshot)
}

/// What the page showed and how it was sent.
fn assert_consent_page(stack: &Stack, client: &Client, report: &Value, screenshot: &PathBuf) {
    let page = &report["consent"];
    assert_eq!(page["status"], 200, "{report}");
    assert_eq!(page["path"], "/oauth/authorize", "{report}");
    let heading = page["heading"].as_str().unwrap();
    assert!(heading.contains(CLIENT_NAME), "the heading names the client: {heading}");
    let text = page["text"].as_str().unwrap();
    let redirect_host =
        client.redirect.redirect_uri().trim_start_matches("http://").split('/').next().unwrap().to_owned();
    assert!(text.contains(&redirect_host), "the page names the redirect host {redirect_host}: {text}");
    assert!(text.contains(&client.id), "the page shows the client id: {text}");
    assert!(text.contains(&format!("{}/mcp/demo", stack.base_url())), "the page names the resource: {text}");
    assert!(text.contains("mcp:write"), "the page lists the scopes: {text}");
    let buttons: Vec<&str> = page["buttons"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(buttons, ["Approve", "Deny"], "{report}");

    let headers = &page["security_headers"];
    let csp = headers["content-security-policy"].as_str().expect("a CSP");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains(&format!("form-action 'self' http://{redirect_host}")), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY", "{report}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{report}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{report}");
    assert_eq!(headers["cache-control"], "no-store", "{report}");
    assert!(headers.get("strict-transport-security").is_none(), "no HSTS over plain http: {report}");
    // The page has no script and loads nothing else: the CSP blocks nothing.
    assert_eq!(report["console_errors"], json!([]), "{report}");

    let png = std::fs::read(screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "{} is not a real screenshot", screenshot.display());
}

fn assert_landed(report: &Value, client: &Client, callback: &ReceivedRedirect) {
    let redirect_uri = client.redirect.redirect_uri();
    assert!(redirect_uri.starts_with(report["landed_origin"].as_str().unwrap()), "{report}");
    assert_eq!(report["landed_path"], "/callback", "{report}");
    assert!(report["landed_text"].as_str().unwrap().contains("received the answer"), "{report}");
    assert_eq!(callback.path(), "/callback");
}

#[test]
fn the_consent_page_names_the_client_and_deny_and_approve_return_to_it() {
    let stack = stack();
    let client = register(&stack);

    // Deny: back to the client with access_denied, the state and the issuer.
    let (url, _) = authorization_url(&stack, &client, "deny-state");
    let (report, screenshot) = browse(&stack, &client, &url, "deny");
    assert_consent_page(&stack, &client, &report, &screenshot);
    let denied = client.redirect.wait_for(1, Duration::from_secs(5)).unwrap();
    assert_landed(&report, &client, &denied);
    assert_eq!(denied.param("error").as_deref(), Some("access_denied"), "{}", denied.target);
    assert_eq!(denied.param("state").as_deref(), Some("deny-state"));
    assert_eq!(denied.param("iss").as_deref(), Some(stack.base_url()));
    assert_eq!(denied.param("code"), None);

    // Approve, in a fresh browser profile: a code, the state and the issuer.
    let (url, verifier) = authorization_url(&stack, &client, "approve-state");
    let (report, screenshot) = browse(&stack, &client, &url, "approve");
    assert_consent_page(&stack, &client, &report, &screenshot);
    let approved = client.redirect.wait_for(2, Duration::from_secs(5)).unwrap();
    assert_landed(&report, &client, &approved);
    assert_eq!(approved.param("state").as_deref(), Some("approve-state"));
    assert_eq!(approved.param("iss").as_deref(), Some(stack.base_url()));
    assert_eq!(approved.param("error"), None, "{}", approved.target);
    let code = approved.param("code").expect("a code");

    // The client redeems the code and uses the token.
    let resource = format!("{}/mcp/demo", stack.base_url());
    let form = form_encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &client.redirect.redirect_uri()),
        ("client_id", &client.id),
        ("code_verifier", &verifier),
        ("resource", &resource),
    ]);
    let response = stack
        .http()
        .post(format!("{}/oauth/token", stack.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "token exchange");
    let tokens: Value = response.json().unwrap();
    let access_token = tokens["access_token"].as_str().expect("an access token");

    let initialize = stack.mcp_post("/mcp/demo", Some(access_token), &mcp::initialize_request(1)).unwrap();
    assert_eq!(initialize.status, 200, "{}", initialize.body);
    let session = stack.session("/mcp/demo", Some(access_token)).unwrap();
    let whoami: Value =
        serde_json::from_str(&session.call_tool("whoami", json!({})).unwrap().tool_text().unwrap()).unwrap();
    assert_eq!(whoami["headers"]["x-sekisho-subject"], "dev-user", "{whoami}");
    assert_eq!(whoami["headers"]["x-sekisho-client-id"], client.id.as_str(), "{whoami}");

    let events: Vec<String> =
        stack.audit_events(None).unwrap().iter().filter_map(|e| e["event"].as_str().map(str::to_owned)).collect();
    for event in ["consent.denied", "consent.granted", "code.issued", "code.redeemed"] {
        assert!(events.iter().any(|e| e == event), "no {event} in the audit log: {events:?}");
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://form.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}
