//! The official MCP TypeScript SDK (`@modelcontextprotocol/sdk` 1.x, pinned in
//! `tests/clients/node/package-lock.json`) against the real stack, unmodified
//! and headless (SPEC I2, issue 3's acceptance): `StreamableHTTPClientTransport`
//! with an `OAuthClientProvider` — 401, discovery, dynamic registration with
//! the SDK's body, authorization code + PKCE through the development login
//! with auto-consent, `finishAuth`, reconnect, `tools/list`, `tools/call`.
//!
//! The SDK's providers often send no `state` (SPEC I4); the first run sends
//! none, the second one does.

use std::time::Duration;

use sekisho_e2e::{Instance, Stack, StackOptions};
use serde_json::Value;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn headless_stack() -> Stack {
    // Before starting anything: a missing SDK fails at once, saying how to install it.
    sekisho_e2e::clients::node().unwrap();
    let options = StackOptions {
        instances: vec![Instance::new("demo", "oauth"), Instance::new("other", "oauth")],
        authz_env: vec![("SEKISHO_DEV_LOGIN".into(), "1".into()), ("SEKISHO_DEV_AUTO_CONSENT".into(), "1".into())],
        ..StackOptions::default()
    };
    Stack::start(options).expect("the stack starts")
}

fn run_sdk(stack: &Stack, redirect_uri: &str, send_state: bool) -> Value {
    let url = format!("{}/mcp/demo", stack.base_url());
    let run = stack
        .run_node_client(
            "typescript_sdk.mjs",
            &[
                ("SEKISHO_MCP_URL", &url),
                ("SEKISHO_REDIRECT_URI", redirect_uri),
                ("SEKISHO_ISSUER", stack.base_url()),
                ("SEKISHO_SEND_STATE", if send_state { "1" } else { "0" }),
            ],
            CLIENT_TIMEOUT,
        )
        .unwrap();
    run.expect_ok().clone()
}

fn assert_listed_and_identified(report: &Value) {
    let tools: Vec<&str> = report["tools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    for tool in ["whoami", "echo", "add_note", "list_notes"] {
        assert!(tools.contains(&tool), "tools/list lacks {tool}: {report}");
    }
    let headers = &report["whoami"]["headers"];
    assert_eq!(headers["x-sekisho-auth"], "jwt", "{report}");
    assert_eq!(headers["x-sekisho-subject"], "dev-user", "{report}");
    assert_eq!(headers["x-sekisho-client-id"], report["client_id"], "{report}");
    assert_eq!(headers["x-sekisho-instance"], "demo", "{report}");
    assert!(headers["x-sekisho-scopes"].as_str().unwrap().split(' ').any(|s| s == "mcp:write"), "{report}");
    assert_eq!(report["whoami"]["authorization_present"], false, "the token reached the MCP server: {report}");
    assert_eq!(report["registrations"], 1, "{report}");
    assert_eq!(report["authorizations"], 1, "{report}");
}

#[test]
fn streamable_http_transport_with_an_oauth_provider_registers_authorizes_and_calls_a_tool() {
    let stack = headless_stack();

    let without_state = run_sdk(&stack, "http://127.0.0.1:33420/callback", false);
    assert_listed_and_identified(&without_state);
    assert_eq!(without_state["state_sent"], false);
    assert_eq!(without_state["state_returned"], false, "no state asked for, none invented: {without_state}");
    let params = without_state["authorization_params"].as_array().unwrap();
    for param in ["client_id", "code_challenge", "code_challenge_method", "redirect_uri", "resource", "response_type"] {
        assert!(params.iter().any(|p| p == param), "the SDK's authorization request lacks {param}: {without_state}");
    }

    let with_state = run_sdk(&stack, "http://127.0.0.1:33421/callback", true);
    assert_listed_and_identified(&with_state);
    assert_eq!(with_state["state_returned"], true, "{with_state}");
    assert_ne!(with_state["client_id"], without_state["client_id"], "two registrations, two clients");
}
