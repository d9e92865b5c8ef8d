//! The JWT gateway end to end: an MCP client talks to Envoy, the sekisho
//! filter checks its access token, and the demo MCP server (whose `whoami`
//! tool reports what reached it) stands upstream. Each scenario starts its own
//! stack, so scenarios that stop the service or rotate keys disturb no other.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sekisho_e2e::authz::TEST_CLIENT_ID;
use sekisho_e2e::mcp::{self, McpSession};
use sekisho_e2e::{McpResponse, Stack, StackOptions};
use serde_json::{Value, json};
use xtask::envoy_config::McpRateLimit;

const DEMO: &str = "/mcp/demo";
const READ: &str = "mcp:read";
const READ_WRITE: &str = "mcp:read mcp:write";

fn stack() -> Stack {
    Stack::start(StackOptions::default()).expect("the stack starts")
}

fn resource_metadata_param(stack: &Stack, instance: &str) -> String {
    format!("resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/{instance}\"", stack.base_url())
}

/// Calls `whoami` in `session` and returns its report of what reached the server.
fn whoami(session: &McpSession<'_>, extra_headers: &[(&str, &str)]) -> Value {
    let call = mcp::request(100, "tools/call", json!({ "name": "whoami", "arguments": {} }));
    let response = session.post_with(extra_headers, &call).unwrap();
    assert_eq!(response.status, 200, "whoami: {}", response.body);
    serde_json::from_str(&response.tool_text().unwrap()).unwrap()
}

fn scopes_of(report: &Value) -> Vec<String> {
    report["headers"]["x-sekisho-scopes"]
        .as_str()
        .unwrap_or_default()
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn challenge(response: &McpResponse) -> &str {
    response
        .www_authenticate()
        .unwrap_or_else(|| panic!("no WWW-Authenticate on {}: {}", response.status, response.body))
}

#[test]
fn a_valid_token_reaches_the_server_as_a_verified_identity_without_the_token() {
    let stack = stack();
    let token = stack.mint_token("demo", READ_WRITE, "alice").unwrap();
    let session = stack.session(DEMO, Some(&token)).unwrap();

    let report = whoami(&session, &[]);

    assert_eq!(report["headers"]["x-sekisho-subject"], "alice", "{report}");
    assert_eq!(report["headers"]["x-sekisho-client-id"], TEST_CLIENT_ID, "{report}");
    assert_eq!(report["headers"]["x-sekisho-auth"], "jwt", "{report}");
    assert!(scopes_of(&report).contains(&"mcp:write".to_owned()), "{report}");
    assert_eq!(report["authorization_present"], false, "the token was passed through: {report}");
}

#[test]
fn a_request_without_a_token_is_challenged_towards_the_resource_metadata() {
    let stack = stack();

    let response = stack.mcp_post(DEMO, None, &mcp::initialize_request(1)).unwrap();

    assert_eq!(response.status, 401, "{}", response.body);
    let challenge = challenge(&response);
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    assert!(challenge.contains(&resource_metadata_param(&stack, "demo")), "{challenge}");
    // RFC 6750 §3.1: no error code when no credential was presented.
    assert!(!challenge.contains("error="), "{challenge}");
    assert!(response.json().unwrap().get("error").is_some(), "{}", response.body);
}

#[test]
fn a_garbage_token_is_refused_as_an_invalid_token() {
    let stack = stack();

    let response = stack.mcp_post(DEMO, Some("not-a-jwt"), &mcp::initialize_request(1)).unwrap();

    assert_eq!(response.status, 401, "{}", response.body);
    let challenge = challenge(&response);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains(&resource_metadata_param(&stack, "demo")), "{challenge}");
}

#[test]
fn a_token_for_another_instance_is_refused_at_this_one() {
    let stack = stack();
    let token_for_other = stack.mint_token("other", READ, "alice").unwrap();

    let at_demo = stack.mcp_post(DEMO, Some(&token_for_other), &mcp::initialize_request(1)).unwrap();
    let at_other = stack.mcp_post("/mcp/other", Some(&token_for_other), &mcp::initialize_request(1)).unwrap();

    assert_eq!(at_demo.status, 401, "{}", at_demo.body);
    assert!(challenge(&at_demo).contains("error=\"invalid_token\""), "{}", challenge(&at_demo));
    assert_eq!(at_other.status, 200, "the token itself is fine where it belongs: {}", at_other.body);
}

#[test]
fn a_read_only_token_may_list_tools_but_not_call_them() {
    let stack = stack();
    let token = stack.mint_token("demo", READ, "alice").unwrap();
    let session = stack.session(DEMO, Some(&token)).unwrap();

    let listed = session.request("tools/list", json!({})).unwrap();
    let called = session.call_tool("whoami", json!({})).unwrap();

    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(called.status, 403, "{}", called.body);
    let challenge = challenge(&called);
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("scope=\"mcp:write\""), "{challenge}");
    assert!(challenge.contains(&resource_metadata_param(&stack, "demo")), "{challenge}");
}

#[test]
fn identity_headers_sent_by_the_client_are_replaced() {
    let stack = stack();
    let token = stack.mint_token("demo", READ_WRITE, "alice").unwrap();
    let session = stack.session(DEMO, Some(&token)).unwrap();

    let report = whoami(
        &session,
        &[
            ("x-sekisho-subject", "mallory"),
            ("x-sekisho-auth", "api_key"),
            ("x-sekisho-scopes", "mcp:admin"),
            ("x-sekisho-client-id", "evil"),
        ],
    );

    assert_eq!(report["headers"]["x-sekisho-subject"], "alice", "{report}");
    assert_eq!(report["headers"]["x-sekisho-auth"], "jwt", "{report}");
    assert_eq!(report["headers"]["x-sekisho-client-id"], TEST_CLIENT_ID, "{report}");
    assert!(!scopes_of(&report).contains(&"mcp:admin".to_owned()), "{report}");
}

#[test]
fn a_browser_preflight_passes_without_credentials_and_the_challenge_is_readable() {
    let stack = stack();
    let origin = "https://inspector.example";
    let url = format!("{}{DEMO}", stack.base_url());

    let preflight = stack
        .http()
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, mcp-protocol-version")
        .send()
        .unwrap();
    let refused = stack
        .http()
        .post(&url)
        .header("origin", origin)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(mcp::initialize_request(1).to_string())
        .send()
        .unwrap();

    assert_eq!(preflight.status(), 200);
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase()
    };
    assert_eq!(header(&preflight, "access-control-allow-origin"), origin);
    assert!(header(&preflight, "access-control-allow-methods").contains("post"));
    for allowed in ["authorization", "mcp-protocol-version", "mcp-session-id"] {
        assert!(header(&preflight, "access-control-allow-headers").contains(allowed), "{allowed}");
    }
    assert!(header(&preflight, "access-control-expose-headers").contains("www-authenticate"));
    // The 401 itself: a browser client can only follow the challenge if it may read it.
    assert_eq!(refused.status(), 401);
    assert_eq!(header(&refused, "access-control-allow-origin"), origin);
    assert!(header(&refused, "access-control-expose-headers").contains("www-authenticate"));
}

#[test]
fn protected_resource_metadata_through_envoy_names_the_canonical_resource_and_issuer() {
    let stack = stack();
    let base = stack.base_url();

    let response = stack.http().get(format!("{base}/.well-known/oauth-protected-resource/mcp/demo")).send().unwrap();

    assert_eq!(response.status(), 200);
    let metadata: Value = response.json().unwrap();
    assert_eq!(metadata["resource"], format!("{base}/mcp/demo"), "{metadata}");
    assert_eq!(metadata["authorization_servers"], json!([base]), "{metadata}");
}

#[test]
fn key_rotation_loses_no_request() {
    // Over a thousand requests in four seconds from one caller: this is about
    // keys, not Envoy's per-credential rate limit, so that is lifted here.
    let stack = Stack::start(StackOptions {
        mcp_rate_limit: McpRateLimit { requests: 1_000_000, window_seconds: 1, ..McpRateLimit::default() },
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let before_rotation = stack.mint_token("demo", READ, "alice").unwrap();
    let stop = AtomicBool::new(false);
    let outcomes: Mutex<Vec<(Instant, u16, String)>> = Mutex::new(Vec::new());

    let rotated_at = thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                // A fresh token each time: after the rotation these carry the new kid.
                let outcome = stack
                    .mint_token("demo", READ, "alice")
                    .and_then(|token| stack.mcp_post(DEMO, Some(&token), &mcp::initialize_request(1)));
                let entry = match outcome {
                    Ok(r) => (Instant::now(), r.status, r.body),
                    Err(e) => (Instant::now(), 0, format!("{e:#}")),
                };
                outcomes.lock().unwrap().push(entry);
            }
        });
        thread::sleep(Duration::from_secs(1));
        stack.rotate_keys().unwrap();
        let rotated_at = Instant::now();
        thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        rotated_at
    });

    let outcomes = outcomes.into_inner().unwrap();
    let failures: Vec<_> = outcomes.iter().filter(|(_, status, _)| *status != 200).collect();
    let after = outcomes.iter().filter(|(at, _, _)| *at > rotated_at).count();
    assert!(failures.is_empty(), "{} of {} requests failed: {:?}", failures.len(), outcomes.len(), failures.first());
    assert!(after >= 5, "only {after} requests ran after the rotation");
    // The previous key stays published: tokens issued before still work.
    let old = stack.mcp_post(DEMO, Some(&before_rotation), &mcp::initialize_request(1)).unwrap();
    assert_eq!(old.status, 200, "{}", old.body);
}

#[test]
fn valid_tokens_keep_working_while_the_service_is_down() {
    // Short refreshes (the filter's floor is its 2 s retry period), so that
    // several fail while the service is down.
    let mut stack = Stack::start(StackOptions { filter_refresh_seconds: 2, ..StackOptions::default() }).unwrap();
    let seen = stack.mint_token("demo", READ, "alice").unwrap();
    let unseen = stack.mint_token("demo", READ, "bob").unwrap();
    let first = stack.mcp_post(DEMO, Some(&seen), &mcp::initialize_request(1)).unwrap();
    assert_eq!(first.status, 200, "{}", first.body);

    stack.stop_authz();
    // Several refreshes of keys and policy fail meanwhile.
    thread::sleep(Duration::from_secs(5));

    for token in [&seen, &unseen, &seen] {
        let response = stack.mcp_post(DEMO, Some(token), &mcp::initialize_request(1)).unwrap();
        assert_eq!(response.status, 200, "with the service down: {}", response.body);
    }
    stack.start_authz().unwrap();
    let after = stack.mcp_post(DEMO, Some(&seen), &mcp::initialize_request(1)).unwrap();
    assert_eq!(after.status, 200, "{}", after.body);
}

#[test]
fn the_filter_reports_its_decisions_in_envoy_stats() {
    let stack = stack();
    let token = stack.mint_token("demo", READ, "alice").unwrap();
    stack.mcp_post(DEMO, Some(&token), &mcp::initialize_request(1)).unwrap();
    stack.mcp_post(DEMO, None, &mcp::initialize_request(1)).unwrap();
    // The filter hands its counts to Envoy once a tick (every second).
    thread::sleep(Duration::from_millis(2_500));

    let stats = stack.envoy_stats().unwrap();

    // The filter's own statistics, not the cluster's or the listener's.
    let filter_counters: Vec<(&str, u64)> = stats
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(name, _)| {
            !name.starts_with("cluster.") && !name.starts_with("http.") && !name.starts_with("listener.")
        })
        .filter_map(|(name, value)| Some((name, value.trim().parse::<u64>().ok()?)))
        .collect();
    let moved = |kind: &str| filter_counters.iter().any(|(name, value)| name.contains(kind) && *value > 0);
    assert!(moved("allowed"), "no allowed-request counter moved:\n{stats}");
    assert!(moved("denied"), "no denied-request counter moved:\n{stats}");
}

#[test]
fn no_log_line_contains_a_token_or_an_api_key() {
    let stack = stack();
    let token = stack.mint_token("demo", READ, "alice").unwrap();
    let fake_key = "sk_canary_0123456789abcdef";
    stack.mcp_post(DEMO, Some(&token), &mcp::initialize_request(1)).unwrap();
    stack.mcp_post(DEMO, Some("canary.garbage.token"), &mcp::initialize_request(1)).unwrap();
    stack
        .mcp_post_with(&format!("{DEMO}?api-key={fake_key}"), &[("x-api-key", fake_key)], &mcp::initialize_request(1))
        .unwrap();

    let signature = token.rsplit('.').next().unwrap();
    for log in stack.logs().unwrap() {
        for secret in [signature, "canary.garbage.token", fake_key] {
            assert!(!log.text.contains(secret), "{} contains a credential ({secret})", log.name);
        }
    }
}

#[test]
fn the_admin_token_is_not_an_access_token() {
    let stack = stack();
    let response = stack.mcp_post(DEMO, Some(stack.admin_token()), &mcp::initialize_request(1)).unwrap();
    assert_eq!(response.status, 401, "{}", response.body);
}
