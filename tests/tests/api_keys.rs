//! API keys end to end (SPEC K, F3, F7): keys issued by the service, checked
//! inline by the filter in real Envoy, revocable within a bound.
//!
//! Instances: `legacy` takes API keys only, `modern` OAuth only, `demo` and
//! `other` take either. The service's revocation bound is set to 3 s here so
//! the bound can be measured in a test.

use std::thread;
use std::time::{Duration, Instant};

use sekisho_e2e::mcp::{self, McpSession};
use sekisho_e2e::{Instance, Stack, StackOptions};
use serde_json::{Value, json};

const BOUND_SECONDS: u64 = 3;
/// The filter hands counts to Envoy once a second; a look a little later sees them.
const TICK: Duration = Duration::from_millis(1_500);

fn stack() -> Stack {
    let options = StackOptions {
        instances: vec![
            Instance::new("demo", "both"),
            Instance::new("other", "both"),
            Instance::new("legacy", "api_key"),
            Instance::new("modern", "oauth"),
        ],
        authz_env: vec![("SEKISHO_API_KEY_CACHE_SECONDS".into(), BOUND_SECONDS.to_string())],
        ..StackOptions::default()
    };
    Stack::start(options).expect("the stack starts")
}

fn create_key(stack: &Stack, instance: &str, scope: &str, extra: &[&str]) -> String {
    let mut args = vec!["api-keys", "create", "--name", "e2e", "--instance", instance, "--scope", scope];
    args.extend_from_slice(extra);
    stack.authz_cli(&args).expect("api-keys create").trim().to_owned()
}

fn key_id(stack: &Stack, key: &str) -> String {
    let list: Value = serde_json::from_str(&stack.authz_cli(&["api-keys", "list", "--json"]).unwrap()).unwrap();
    let prefix = &key[..12];
    let keys = list.as_array().cloned().or_else(|| list["api_keys"].as_array().cloned()).unwrap_or_default();
    keys.iter()
        .find(|k| k["display_prefix"].as_str() == Some(prefix))
        .and_then(|k| k["id"].as_str())
        .unwrap_or_else(|| panic!("key {prefix} not listed: {list}"))
        .to_owned()
}

fn whoami(session: &McpSession<'_>) -> Value {
    let response = session.call_tool("whoami", json!({})).unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.tool_text().unwrap()).unwrap()
}

/// The status of an `initialize` (the one request that needs no session):
/// 200 once the gateway let it through.
fn probe(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> u16 {
    stack.mcp_post_with(path, headers, &mcp::initialize_request(1)).unwrap().status
}

fn counter(stack: &Stack, name: &str) -> u64 {
    let stats = stack.envoy_stats().unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wasmcustom.sekisho.{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_key_in_the_header_reaches_the_server_as_an_identity_without_the_key() {
    let stack = stack();
    let key = create_key(&stack, "demo", "mcp:read mcp:write", &[]);
    let session = stack.session_with("/mcp/demo", &[("x-api-key", &key)]).unwrap();

    let report = whoami(&session);

    assert_eq!(report["headers"]["x-sekisho-auth"], "api_key", "{report}");
    assert!(report["headers"]["x-sekisho-subject"].as_str().is_some_and(|s| s.starts_with("ak_")), "{report}");
    assert_eq!(report["api_key_header_present"], false, "{report}");
    assert_eq!(report["authorization_present"], false, "{report}");
}

#[test]
fn a_key_in_the_query_is_taken_out_of_the_url_before_the_server_and_the_log() {
    let stack = stack();
    let key = create_key(&stack, "demo", "mcp:read mcp:write", &[]);
    let session = stack.session_with(&format!("/mcp/demo?tenant=t1&api-key={key}"), &[]).unwrap();

    let report = whoami(&session);

    assert_eq!(report["headers"]["x-sekisho-auth"], "api_key", "{report}");
    assert_eq!(report["query"], "tenant=t1", "the other parameters stay, the key goes: {report}");
    let logs = stack.logs().unwrap();
    for log in logs {
        assert!(!log.text.contains(&key), "{} contains the API key", log.name);
    }
}

#[test]
fn malformed_keys_are_refused_by_the_filter_without_asking_the_service() {
    let stack = stack();
    let key = create_key(&stack, "demo", "mcp:read", &[]);
    // One character changed: the checksum no longer matches.
    let mut typo = key.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    thread::sleep(TICK);
    let lookups_before = counter(&stack, "api_key.lookups");

    for bad in [typo.as_str(), "sek_short", "not-a-key-at-all"] {
        let response = stack.mcp_post_with("/mcp/demo", &[("x-api-key", bad)], &mcp::initialize_request(1)).unwrap();
        assert_eq!(response.status, 401, "{bad}: {}", response.body);
        assert!(response.www_authenticate().unwrap().contains("invalid_token"));
    }

    thread::sleep(TICK);
    assert_eq!(counter(&stack, "api_key.lookups"), lookups_before, "a malformed key reached the service");
}

#[test]
fn unknown_expired_and_foreign_keys_are_refused() {
    let stack = stack();
    let unknown = sekisho_contract::api_key::generate(|buf| buf.iter_mut().for_each(|b| *b = 42));
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &unknown)]), 401);

    let short_lived = create_key(&stack, "demo", "mcp:read", &["--expires-in", "2s"]);
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &short_lived)]), 200);
    thread::sleep(Duration::from_millis(2_500));
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &short_lived)]), 401, "expired key still works");

    let for_other = create_key(&stack, "other", "mcp:read", &[]);
    assert_eq!(probe(&stack, "/mcp/other", &[("x-api-key", &for_other)]), 200);
    let at_demo = stack.mcp_post_with("/mcp/demo", &[("x-api-key", &for_other)], &mcp::initialize_request(1)).unwrap();
    assert_eq!(at_demo.status, 403, "{}", at_demo.body);
}

#[test]
fn a_revoked_key_stops_working_within_the_bound_and_not_before_the_cache_allows() {
    let stack = stack();
    let key = create_key(&stack, "demo", "mcp:read", &[]);
    let id = key_id(&stack, &key);
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &key)]), 200);

    stack.authz_cli(&["api-keys", "revoke", &id]).unwrap();
    let revoked_at = Instant::now();
    // The verdict cached a moment ago still stands: no per-request call.
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &key)]), 200, "refused before the cache ran out");
    let mut refused_after = None;
    while revoked_at.elapsed() < Duration::from_secs(BOUND_SECONDS + 5) {
        if probe(&stack, "/mcp/demo", &[("x-api-key", &key)]) == 401 {
            refused_after = Some(revoked_at.elapsed());
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let refused_after = refused_after.expect("the revoked key never stopped working");
    eprintln!("revoked key refused after {refused_after:?} (bound {BOUND_SECONDS} s)");
    // Each worker's cached verdict lives at most the bound.
    assert!(refused_after <= Duration::from_secs(BOUND_SECONDS) + Duration::from_millis(500), "{refused_after:?}");
}

#[test]
fn auth_modes_decide_which_credential_counts() {
    let stack = stack();
    let key = create_key(&stack, "legacy", "mcp:read", &[]);
    let both_key = create_key(&stack, "demo", "mcp:read", &[]);
    let token_legacy = stack.mint_token("legacy", "mcp:read", "alice").unwrap();
    let token_modern = stack.mint_token("modern", "mcp:read", "alice").unwrap();
    let token_demo = stack.mint_token("demo", "mcp:read", "alice").unwrap();
    let bearer = |t: &str| format!("Bearer {t}");

    assert_eq!(probe(&stack, "/mcp/legacy", &[("x-api-key", &key)]), 200, "api_key mode takes keys");
    assert_eq!(
        probe(&stack, "/mcp/legacy", &[("authorization", &bearer(&token_legacy))]),
        401,
        "api_key mode refuses JWTs"
    );
    assert_eq!(
        probe(&stack, "/mcp/modern", &[("authorization", &bearer(&token_modern))]),
        200,
        "oauth mode takes JWTs"
    );
    let modern_key = create_key(&stack, "modern", "mcp:read", &[]);
    assert_eq!(probe(&stack, "/mcp/modern", &[("x-api-key", &modern_key)]), 401, "oauth mode refuses keys");
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &both_key)]), 200, "both takes keys");
    assert_eq!(probe(&stack, "/mcp/demo", &[("authorization", &bearer(&token_demo))]), 200, "both takes JWTs");
}

#[test]
fn a_read_only_key_lists_tools_but_cannot_call_them() {
    let stack = stack();
    let key = create_key(&stack, "demo", "mcp:read", &[]);
    let session = stack.session_with("/mcp/demo", &[("x-api-key", &key)]).unwrap();

    assert_eq!(session.request("tools/list", json!({})).unwrap().status, 200);
    let called = session.call_tool("add_note", json!({ "text": "x" })).unwrap();

    assert_eq!(called.status, 403, "{}", called.body);
    assert!(called.www_authenticate().unwrap().contains("scope=\"mcp:write\""));
}

#[test]
fn with_the_service_stopped_seen_keys_work_until_the_bound_and_unseen_keys_get_503() {
    let mut stack = stack();
    let seen = create_key(&stack, "demo", "mcp:read", &[]);
    let unseen = create_key(&stack, "demo", "mcp:read", &[]);
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &seen)]), 200);

    stack.stop_authz();

    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &seen)]), 200, "a seen key must keep working");
    let unseen_answer =
        stack.mcp_post_with("/mcp/demo", &[("x-api-key", &unseen)], &mcp::initialize_request(1)).unwrap();
    assert_eq!(unseen_answer.status, 503, "{}", unseen_answer.body);
    assert!(unseen_answer.header("retry-after").is_some());
    // Past the bound the filter cannot vouch for the key any more.
    thread::sleep(Duration::from_secs(BOUND_SECONDS + 1));
    assert_eq!(probe(&stack, "/mcp/demo", &[("x-api-key", &seen)]), 503);
}
