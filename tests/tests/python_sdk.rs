//! The official MCP Python SDK (`mcp` on PyPI, pinned in
//! `tests/clients/python/requirements.txt`) against the real stack, unmodified
//! and headless (SPEC I1, issue 3's and issue 5's acceptance):
//!
//! - `OAuthClientProvider`: discovery from the 401, dynamic registration,
//!   authorization code + PKCE through the development login with
//!   auto-consent, the token, then `tools/list` and `tools/call`;
//! - `ClientCredentialsOAuthProvider` with a confidential client an operator
//!   registered with the CLI;
//! - an API key in `X-API-Key` through the SDK's streamable HTTP client;
//! - a refresh: with 5-second access tokens, a call after expiry makes the SDK
//!   use its refresh token, which the service's audit log shows.
//!
//! Each script prints one JSON report; the assertions are here. The scripts
//! never print a credential, and the stack's logs (theirs included) are
//! checked for the ones the test handed out.

use std::time::Duration;

use sekisho_e2e::{Instance, Stack, StackOptions};
use serde_json::Value;

/// A client run (interpreter start-up, discovery, registration, the flow, two
/// MCP calls) takes a few seconds; this is the point where it is hung.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// Access token lifetime for the refresh scenario, seconds. The filter
/// accepts a token for its leeway (30 s) past `exp`, so expiry alone would not
/// make a call fail: the audit log is what shows the SDK refreshed.
const SHORT_TTL: u64 = 5;

fn headless_stack(extra_env: &[(&str, &str)]) -> Stack {
    // Before starting anything: a missing SDK fails at once, saying how to install it.
    sekisho_e2e::clients::python().unwrap();
    let mut authz_env =
        vec![("SEKISHO_DEV_LOGIN".to_owned(), "1".to_owned()), ("SEKISHO_DEV_AUTO_CONSENT".to_owned(), "1".to_owned())];
    authz_env.extend(extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let options = StackOptions {
        instances: vec![Instance::new("demo", "both"), Instance::new("other", "oauth")],
        authz_env,
        ..StackOptions::default()
    };
    Stack::start(options).expect("the stack starts")
}

fn mcp_url(stack: &Stack) -> String {
    format!("{}/mcp/demo", stack.base_url())
}

/// Every demo tool was listed, and `whoami` saw an identity from the gateway
/// and no credential.
fn assert_listed_and_identified(report: &Value, auth: &str) -> Value {
    let tools: Vec<&str> = report["tools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for tool in ["whoami", "echo", "add_note", "list_notes"] {
        assert!(tools.contains(&tool), "tools/list lacks {tool}: {report}");
    }
    let whoami = report["whoami"].clone();
    assert_eq!(whoami["headers"]["x-sekisho-auth"], auth, "{report}");
    assert_eq!(whoami["headers"]["x-sekisho-instance"], "demo", "{report}");
    assert_eq!(whoami["authorization_present"], false, "the token reached the MCP server: {report}");
    assert_eq!(whoami["api_key_header_present"], false, "the key reached the MCP server: {report}");
    whoami
}

fn scopes(whoami: &Value) -> Vec<String> {
    whoami["headers"]["x-sekisho-scopes"].as_str().unwrap_or_default().split(' ').map(str::to_owned).collect()
}

fn assert_logs_free_of(stack: &Stack, secret: &str, what: &str) {
    for log in stack.logs().unwrap() {
        assert!(!log.text.contains(secret), "{} contains the {what}", log.name);
    }
}

/// `token.issued` events by grant type, for `client_id`.
fn issued(stack: &Stack, client_id: &str, grant_type: &str) -> usize {
    let events = stack.audit_events(Some("token.issued")).unwrap();
    events.iter().filter(|e| e["client_id"] == client_id && e["details"]["grant_type"] == grant_type).count()
}

#[test]
fn oauth_client_provider_registers_authorizes_with_pkce_and_calls_a_tool() {
    let stack = headless_stack(&[]);
    let url = mcp_url(&stack);

    let run = stack
        .run_python_client(
            "oauth_code.py",
            &[("SEKISHO_MCP_URL", &url), ("SEKISHO_REDIRECT_URI", "http://127.0.0.1:33418/callback")],
            CLIENT_TIMEOUT,
        )
        .unwrap();
    let report = run.expect_ok();

    assert_eq!(report["registrations"], 1, "one dynamic registration: {report}");
    assert_eq!(report["authorizations"], 1, "one trip through /oauth/authorize: {report}");
    let whoami = assert_listed_and_identified(report, "jwt");
    assert_eq!(whoami["headers"]["x-sekisho-subject"], "dev-user", "{report}");
    let client_id = report["client_id"].as_str().unwrap();
    assert_eq!(whoami["headers"]["x-sekisho-client-id"], client_id, "{report}");
    assert!(scopes(&whoami).contains(&"mcp:write".to_owned()), "{report}");
    assert_eq!(report["has_refresh_token"], true, "the SDK registers the refresh_token grant: {report}");
    assert_eq!(issued(&stack, client_id, "authorization_code"), 1);
}

#[test]
fn client_credentials_provider_with_an_operator_registered_client_calls_a_tool() {
    let stack = headless_stack(&[]);
    let registered = stack
        .authz_cli(&[
            "clients",
            "register",
            "--name",
            "python batch",
            "--confidential",
            "--grant-type",
            "client_credentials",
            "--scope",
            "mcp:read mcp:write",
            "--json",
        ])
        .unwrap();
    let registered: Value = serde_json::from_str(&registered).unwrap();
    let client_id = registered["client_id"].as_str().unwrap();
    let secret = registered["client_secret"].as_str().expect("a confidential client has a secret");

    let run = stack
        .run_python_client(
            "client_credentials.py",
            &[
                ("SEKISHO_MCP_URL", &mcp_url(&stack)),
                ("SEKISHO_ISSUER", stack.base_url()),
                ("SEKISHO_CLIENT_ID", client_id),
                ("SEKISHO_CLIENT_SECRET", secret),
                ("SEKISHO_SCOPE", "mcp:read mcp:write"),
            ],
            CLIENT_TIMEOUT,
        )
        .unwrap();
    let report = run.expect_ok();

    let whoami = assert_listed_and_identified(report, "jwt");
    assert_eq!(whoami["headers"]["x-sekisho-client-id"], client_id, "{report}");
    assert_eq!(whoami["headers"]["x-sekisho-subject"], client_id, "a client acts as itself: {report}");
    assert_eq!(report["has_refresh_token"], false, "client_credentials gets no refresh token: {report}");
    assert_eq!(issued(&stack, client_id, "client_credentials"), 1);
    assert_logs_free_of(&stack, secret, "client secret");
}

#[test]
fn an_api_key_in_a_custom_header_of_the_sdk_transport_calls_a_tool() {
    let stack = headless_stack(&[]);
    let key = stack
        .authz_cli(&["api-keys", "create", "--name", "py", "--instance", "demo", "--scope", "mcp:read mcp:write"])
        .unwrap()
        .trim()
        .to_owned();

    let run = stack
        .run_python_client(
            "api_key.py",
            &[("SEKISHO_MCP_URL", &mcp_url(&stack)), ("SEKISHO_API_KEY", &key)],
            CLIENT_TIMEOUT,
        )
        .unwrap();
    let report = run.expect_ok();

    let whoami = assert_listed_and_identified(report, "api_key");
    assert!(whoami["headers"]["x-sekisho-subject"].as_str().is_some_and(|s| s.starts_with("ak_")), "{report}");
    assert_logs_free_of(&stack, &key, "API key");
}

#[test]
fn the_sdk_refreshes_an_expired_access_token_and_keeps_working() {
    let ttl = SHORT_TTL.to_string();
    let stack = headless_stack(&[("SEKISHO_ACCESS_TOKEN_TTL", &ttl)]);
    let wait = (SHORT_TTL + 2).to_string();

    let run = stack
        .run_python_client(
            "oauth_code.py",
            &[
                ("SEKISHO_MCP_URL", &mcp_url(&stack)),
                ("SEKISHO_REDIRECT_URI", "http://127.0.0.1:33419/callback"),
                ("SEKISHO_WAIT_SECONDS", &wait),
            ],
            CLIENT_TIMEOUT,
        )
        .unwrap();
    let report = run.expect_ok();

    assert_listed_and_identified(report, "jwt");
    assert_eq!(report["whoami_after_wait"]["headers"]["x-sekisho-subject"], "dev-user", "{report}");
    assert_eq!(report["authorizations"], 1, "refreshed, not authorized again: {report}");
    assert_eq!(report["tokens_stored_before_wait"], 1, "{report}");
    assert!(report["tokens_stored"].as_u64().unwrap() >= 2, "the SDK stored a refreshed token: {report}");
    let client_id = report["client_id"].as_str().unwrap();
    assert_eq!(issued(&stack, client_id, "authorization_code"), 1);
    assert!(issued(&stack, client_id, "refresh_token") >= 1, "the token endpoint saw a refresh_token grant");
    let reused = stack.audit_events(Some("refresh.reused")).unwrap();
    assert!(reused.is_empty(), "the SDK presented a spent refresh token: {reused:?}");
}
