//! Envoy's per-credential rate limit on the MCP routes (SPEC S1): configured
//! in `envoy/sekisho.yaml.tmpl` (`local_ratelimit` after the sekisho filter,
//! one bucket per token client and subject, or per API key), not written in
//! the filter. A credential over its budget gets a JSON 429 with
//! `Retry-After`; other credentials are untouched; requests without a valid
//! credential still get the filter's 401, never a 429.

use sekisho_e2e::mcp::{self, McpResponse};
use sekisho_e2e::{Instance, Stack, StackOptions};
use serde_json::json;
use xtask::envoy_config::McpRateLimit;

const DEMO: &str = "/mcp/demo";
const BUDGET: u32 = 5;
/// Long, so that no refill lands inside the test: the budget is exact.
const WINDOW_SECONDS: u32 = 3600;

fn stack() -> Stack {
    let mcp_rate_limit = McpRateLimit { requests: BUDGET, window_seconds: WINDOW_SECONDS, max_credentials: 100 };
    Stack::start(StackOptions { mcp_rate_limit, ..StackOptions::default() }).expect("the stack starts")
}

fn initialize(stack: &Stack, token: Option<&str>) -> McpResponse {
    stack.mcp_post(DEMO, token, &mcp::initialize_request(1)).expect("Envoy answers")
}

fn mint_for(stack: &Stack, client_id: &str, sub: &str) -> String {
    let body = json!({ "instance": "demo", "scope": "mcp:read mcp:write", "sub": sub, "client_id": client_id });
    let answer = stack.admin_post("tokens", &body).expect("minted");
    answer["access_token"].as_str().expect("access_token").to_owned()
}

fn rate_limited_count(stack: &Stack) -> u64 {
    let url = format!("{}/stats?filter=mcp_rate_limit", stack.envoy_admin_url());
    let stats = stack.http().get(url).send().and_then(|r| r.text()).expect("Envoy stats");
    stats
        .lines()
        .find_map(|line| line.strip_prefix("mcp_rate_limit.http_local_rate_limit.rate_limited: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate_limited counter in Envoy's stats:\n{stats}"))
}

#[test]
fn a_credential_over_its_budget_gets_429_and_other_credentials_do_not() {
    let stack = stack();
    let alice = mint_for(&stack, "client-a", "alice");
    let bob = mint_for(&stack, "client-b", "bob");
    let alice_elsewhere = mint_for(&stack, "client-b", "alice");

    for i in 0..BUDGET {
        let response = initialize(&stack, Some(&alice));
        assert_eq!(response.status, 200, "request {} of {BUDGET}: {}", i + 1, response.body);
    }
    let refused = initialize(&stack, Some(&alice));
    assert_eq!(refused.status, 429, "{refused:?}");
    let one_token = (WINDOW_SECONDS / BUDGET).to_string();
    assert_eq!(refused.header("retry-after"), Some(one_token.as_str()), "{refused:?}");
    assert_eq!(refused.header("content-type"), Some("application/json"), "{refused:?}");
    let body = refused.json().expect("a JSON body");
    assert_eq!(body["error"], "too_many_requests", "{body}");
    assert!(refused.header("x-ratelimit-limit").is_some(), "{refused:?}");
    assert_eq!(rate_limited_count(&stack), 1);

    // Another client and subject, and the same subject through another
    // client, are other credentials with budgets of their own.
    for token in [&bob, &alice_elsewhere] {
        let response = initialize(&stack, Some(token));
        assert_eq!(response.status, 200, "{}", response.body);
    }
    assert_eq!(initialize(&stack, Some(&alice)).status, 429, "alice is still over");
}

#[test]
fn requests_without_a_valid_credential_get_401_never_429() {
    let stack = stack();
    let alice = mint_for(&stack, "client-a", "alice");
    for _ in 0..=BUDGET {
        initialize(&stack, Some(&alice));
    }
    assert_eq!(initialize(&stack, Some(&alice)).status, 429);

    // The filter refuses these before the limiter sees them, however many.
    for _ in 0..(2 * BUDGET) {
        let anonymous = initialize(&stack, None);
        assert_eq!(anonymous.status, 401, "{}", anonymous.body);
        assert!(anonymous.www_authenticate().is_some(), "{anonymous:?}");
        let forged = initialize(&stack, Some("not.a.token"));
        assert_eq!(forged.status, 401, "{}", forged.body);
    }
    // A client cannot pick another's bucket by sending identity headers:
    // the filter replaces them with the verified identity.
    let bob = mint_for(&stack, "client-b", "bob");
    let spoofing = stack
        .mcp_post_with(
            DEMO,
            &[
                ("authorization", &format!("Bearer {bob}")),
                ("x-sekisho-client-id", "client-a"),
                ("x-sekisho-subject", "alice"),
            ],
            &mcp::initialize_request(1),
        )
        .expect("Envoy answers");
    assert_eq!(spoofing.status, 200, "{}", spoofing.body);
}

#[test]
fn after_waiting_retry_after_the_credential_may_send_again() {
    let mcp_rate_limit = McpRateLimit { requests: 2, window_seconds: 4, max_credentials: 100 };
    let stack = Stack::start(StackOptions { mcp_rate_limit, ..StackOptions::default() }).expect("the stack starts");
    let alice = mint_for(&stack, "client-a", "alice");
    while initialize(&stack, Some(&alice)).status == 200 {}
    let refused = initialize(&stack, Some(&alice));
    assert_eq!(refused.status, 429, "{refused:?}");
    let retry_after: u64 = refused.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert_eq!(retry_after, 2);
    std::thread::sleep(std::time::Duration::from_secs(retry_after));
    let again = initialize(&stack, Some(&alice));
    assert_eq!(again.status, 200, "{again:?}");
}

#[test]
fn each_api_key_has_a_budget_of_its_own() {
    let mcp_rate_limit = McpRateLimit { requests: BUDGET, window_seconds: WINDOW_SECONDS, max_credentials: 100 };
    let instances = vec![Instance::new("demo", "both")];
    let stack = Stack::start(StackOptions { mcp_rate_limit, instances, ..StackOptions::default() }).expect("stack");
    let create = ["api-keys", "create", "--name", "limited", "--instance", "demo", "--scope", "mcp:read mcp:write"];
    let first = stack.authz_cli(&create).expect("a key").trim().to_owned();
    let second = stack.authz_cli(&create).expect("a key").trim().to_owned();
    let with_key = |key: &str| {
        stack.mcp_post_with(DEMO, &[("x-api-key", key)], &mcp::initialize_request(1)).expect("Envoy answers")
    };
    for i in 0..BUDGET {
        let response = with_key(&first);
        assert_eq!(response.status, 200, "request {} of {BUDGET}: {}", i + 1, response.body);
    }
    let refused = with_key(&first);
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.header("retry-after").is_some(), "{refused:?}");
    assert_eq!(with_key(&second).status, 200, "another key is another credential");
}
