//! What Envoy's public listener exposes, independent of any token decision:
//! discovery and OAuth reach the service without the filter, the service's
//! internal and admin APIs are not reachable, odd paths are refused, h2c
//! works, the access log keeps query strings out, and two stacks coexist on
//! one machine.

use std::io::{Read, Write};
use std::net::TcpStream;

use sekisho_e2e::{Stack, StackOptions};

/// These scenarios never touch `/mcp/`, so they need not wait for the filter's keys.
fn stack() -> Stack {
    Stack::start(StackOptions { wait_for_filter: false, ..StackOptions::default() }).expect("the stack starts")
}

fn status_of(stack: &Stack, path: &str) -> u16 {
    let url = format!("{}{path}", stack.base_url());
    stack.http().get(&url).send().unwrap_or_else(|e| panic!("GET {url}: {e}")).status().as_u16()
}

/// The status of `GET path` sent byte for byte: HTTP clients resolve `..` and
/// `%2E%2E` themselves, and these scenarios are about what Envoy does with them.
fn raw_status_of(stack: &Stack, path: &str) -> u16 {
    let mut connection = TcpStream::connect(("127.0.0.1", stack.ports().envoy)).unwrap();
    write!(connection, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    connection.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap_or_default();
    status.parse().unwrap_or_else(|_| panic!("no status line in {answer:?}"))
}

#[test]
fn discovery_reaches_the_service_without_a_token() {
    let stack = stack();
    for path in
        ["/.well-known/oauth-protected-resource/mcp/demo", "/.well-known/oauth-authorization-server", "/oauth/jwks"]
    {
        assert_eq!(status_of(&stack, path), 200, "{path}");
    }
}

#[test]
fn the_service_internal_and_admin_apis_are_not_reachable_from_outside() {
    let stack = stack();
    for path in ["/internal/v1/filter-policy", "/admin/v1/instances", "/health", "/metrics", "/", "/mcp"] {
        assert_eq!(status_of(&stack, path), 404, "{path}");
    }
    // Normalisation happens before routing: no way around the prefix match.
    assert_eq!(raw_status_of(&stack, "/oauth/../internal/v1/filter-policy"), 404);
    assert_eq!(raw_status_of(&stack, "/.well-known/%2E%2E/internal/v1/filter-policy"), 404);
    assert_eq!(raw_status_of(&stack, "/oauth//../admin/v1/instances"), 404);
}

#[test]
fn an_encoded_slash_in_the_path_is_refused() {
    let stack = stack();
    assert_eq!(raw_status_of(&stack, "/mcp/demo%2Fother"), 400);
    assert_eq!(raw_status_of(&stack, "/mcp/demo%2fother"), 400);
}

#[test]
fn h2c_clients_are_served() {
    let stack = stack();
    let client = sekisho_e2e::http::client_builder().http2_prior_knowledge().build().unwrap();
    let response =
        client.get(format!("{}/.well-known/oauth-protected-resource/mcp/demo", stack.base_url())).send().unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[test]
fn the_access_log_records_the_path_but_never_the_query_string() {
    let stack = stack();
    let secret = "sk_query_canary_5f0c";
    status_of(&stack, &format!("/.well-known/oauth-protected-resource/mcp/demo?api-key={secret}"));

    // The access line is written when the stream ends; give it a moment.
    let mut access_log = String::new();
    for _ in 0..50 {
        access_log = stack
            .logs()
            .unwrap()
            .into_iter()
            .find(|l| l.name == "envoy.stdout.log")
            .map(|l| l.text)
            .unwrap_or_default();
        if access_log.contains("/.well-known/oauth-protected-resource/mcp/demo") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(access_log.contains("GET /.well-known/oauth-protected-resource/mcp/demo "), "{access_log}");
    assert!(!access_log.contains(secret), "{access_log}");
    assert!(!access_log.contains("api-key"), "{access_log}");
}

#[test]
fn two_stacks_run_side_by_side() {
    let first = stack();
    let second = stack();
    assert_ne!(first.base_url(), second.base_url());
    let path = "/.well-known/oauth-protected-resource/mcp/demo";
    assert_eq!(status_of(&first, path), 200);
    assert_eq!(status_of(&second, path), 200);
}
