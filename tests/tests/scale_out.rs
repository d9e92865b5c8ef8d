//! Scale-out (SPEC D2, D3; issue 8): two `sekisho-authz` replicas behind
//! Envoy's `sekisho_authz` cluster (round robin) on one PostgreSQL database of
//! the test's own. Whatever one replica records, the other knows; a replica
//! that stops takes nothing with it.
//!
//! Replicas are addressed directly (bypassing Envoy) where a test must know
//! which one answered, and through Envoy where a client would be.

use sekisho_e2e::oauth::{self, Authorization, ConsentPage, Pkce, Registered};
use sekisho_e2e::{Instance, Stack, StackOptions, mcp};
use serde_json::{Value, json};

fn two_replicas() -> Stack {
    let options = StackOptions {
        authz_replicas: 2,
        fresh_postgres: true,
        instances: vec![Instance::new("demo", "oauth"), Instance::new("other", "oauth")],
        // A login without an identity provider; consent is asked, so a login
        // can be left pending on the consent page.
        authz_env: vec![("SEKISHO_DEV_LOGIN".into(), "1".into())],
        ..StackOptions::default()
    };
    Stack::start(options).expect("two replicas start on a fresh PostgreSQL database")
}

fn replica(stack: &Stack, index: usize) -> String {
    stack.authz_replica_url(index).unwrap()
}

fn resource(stack: &Stack) -> String {
    format!("{}/mcp/demo", stack.base_url())
}

/// An access token minted by replica `index` through its admin API.
fn mint_at(stack: &Stack, index: usize, sub: &str) -> String {
    let body =
        json!({ "instance": "demo", "scope": "mcp:read mcp:write", "sub": sub, "client_id": "scale-out", "ttl": 600 });
    let response = stack
        .http()
        .post(format!("{}/admin/v1/tokens", replica(stack, index)))
        .bearer_auth(stack.admin_token())
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "minting at replica {index}");
    let answer: Value = response.json().unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}

/// `tools/list` at `/mcp/demo` through Envoy works with `token`.
fn assert_lists_tools(stack: &Stack, token: &str) {
    let session = stack.session("/mcp/demo", Some(token)).unwrap();
    let listed = session.request("tools/list", json!({})).unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.json().unwrap()["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{}", listed.body);
}

/// A login left on the consent page of the replica at `base`.
fn pending_login(stack: &Stack, base: &str, client: &Registered, pkce: &Pkce) -> ConsentPage {
    let url = oauth::authorize_url(base, client, pkce, &resource(stack), "mcp:read mcp:write").unwrap();
    match oauth::authorize(stack.http(), &url).unwrap() {
        Authorization::Consent(page) => page,
        Authorization::Redirected(redirect) => panic!("expected the consent page, got {}", redirect.location),
    }
}

#[test]
fn a_client_registered_through_one_replica_is_known_to_the_other() {
    let stack = two_replicas();
    let (a, b) = (replica(&stack, 0), replica(&stack, 1));

    let client = oauth::register(stack.http(), &a, "registered at A").unwrap();

    let read_back = stack
        .http()
        .get(format!("{b}/oauth/register/{}", client.client_id))
        .bearer_auth(&client.registration_access_token)
        .send()
        .unwrap();
    assert_eq!(read_back.status(), 200, "B reads A's registration (RFC 7592)");
    let read_back: Value = read_back.json().unwrap();
    assert_eq!(read_back["client_id"], client.client_id.as_str());
    assert_eq!(read_back["client_name"], "registered at A");

    // And B runs an authorization for it.
    let page = pending_login(&stack, &b, &client, &Pkce::new().unwrap());
    assert!(page.html.contains("registered at A"), "B's consent page names the client");
}

#[test]
fn tokens_minted_by_either_replica_validate_at_the_filter() {
    let stack = two_replicas();
    let from_a = mint_at(&stack, 0, "alice");
    let from_b = mint_at(&stack, 1, "bob");
    for token in [&from_a, &from_b] {
        assert_lists_tools(&stack, token);
    }
    // Both replicas sign with the one key they share through the database.
    let kid = |token: &str| -> Value {
        use base64::Engine;
        let header = token.split('.').next().unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"].clone()
    };
    assert_eq!(kid(&from_a), kid(&from_b));
}

#[test]
fn codes_and_refresh_tokens_work_whichever_replica_answers() {
    let stack = two_replicas();
    let http = stack.http();
    let (a, b) = (replica(&stack, 0), replica(&stack, 1));
    let issuer = stack.base_url();

    let client = oauth::register(http, &a, "code at A, tokens at B").unwrap();
    let pkce = Pkce::new().unwrap();
    let page = pending_login(&stack, &a, &client, &pkce);
    let code = oauth::decide(http, &a, &page, "approve").unwrap().code(issuer).unwrap();

    // Issued by A, redeemed at B.
    let tokens = oauth::redeem(http, &b, &client, &code, &pkce, &resource(&stack)).unwrap();
    assert_lists_tools(&stack, tokens["access_token"].as_str().unwrap());

    // Rotated at A, then at B; the spent token is refused at A.
    let refresh_form = |token: &str| -> (u16, Value) {
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", client.client_id.as_str())];
        oauth::token(http, &a, &form).unwrap()
    };
    let first_refresh = tokens["refresh_token"].as_str().expect("the client registered the refresh_token grant");
    let rotated = oauth::refresh(http, &a, &client, first_refresh).unwrap();
    let rotated_again = oauth::refresh(http, &b, &client, rotated["refresh_token"].as_str().unwrap()).unwrap();
    let (status, answer) = refresh_form(first_refresh);
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")), "{answer}");
    assert_lists_tools(&stack, rotated_again["access_token"].as_str().unwrap());

    // The code works once, wherever it is replayed; the replay at A revokes
    // what B issued from it, refresh family included.
    assert!(oauth::redeem(http, &a, &client, &code, &pkce, &resource(&stack)).is_err(), "a code works once");
    let (status, answer) = refresh_form(rotated_again["refresh_token"].as_str().unwrap());
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")), "{answer}");
}

#[test]
fn a_login_started_on_a_replica_that_stops_completes_through_envoy_on_the_other() {
    let mut stack = two_replicas();
    let issuer = stack.base_url().to_owned();
    let client = oauth::register(stack.http(), &issuer, "survives a replica").unwrap();
    let pkce = Pkce::new().unwrap();
    // The login is left pending on A: stored server-side, bound to the browser's cookie.
    let page = pending_login(&stack, &replica(&stack, 0), &client, &pkce);

    stack.stop_authz_replica(0).unwrap();

    // The browser posts the form to the public URL; Envoy finds B.
    let code = oauth::decide(stack.http(), &issuer, &page, "approve").unwrap().code(&issuer).unwrap();
    let tokens = oauth::redeem(stack.http(), &issuer, &client, &code, &pkce, &resource(&stack)).unwrap();
    assert_lists_tools(&stack, tokens["access_token"].as_str().unwrap());

    // With one replica gone, the public endpoints and the MCP route keep
    // answering, request after request, on fresh connections.
    for _ in 0..10 {
        let metadata = stack
            .http()
            .get(format!("{issuer}/.well-known/oauth-authorization-server"))
            .header("connection", "close")
            .send()
            .unwrap();
        assert_eq!(metadata.status(), 200);
        let initialized = stack
            .mcp_post_with(
                "/mcp/demo",
                &[
                    ("authorization", &format!("Bearer {}", tokens["access_token"].as_str().unwrap())),
                    ("connection", "close"),
                ],
                &mcp::initialize_request(1),
            )
            .unwrap();
        assert_eq!(initialized.status, 200, "{}", initialized.body);
    }
    // Requests Envoy sent to the stopped replica were retried on the other.
    let stats = stack.envoy_stats().unwrap();
    let retried = stats
        .lines()
        .find_map(|l| l.strip_prefix("cluster.sekisho_authz.upstream_rq_retry_success: "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or(0);
    assert!(retried >= 1, "no request was retried on the other replica:\n{stats}");
    stack.check_alive().unwrap();
}
