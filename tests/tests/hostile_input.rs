//! Hostile input through Envoy, the only public entry (SPEC R1): oversized
//! headers, bodies and tokens, JSON-RPC bodies nested ten thousand levels
//! deep or not UTF-8, raw non-UTF-8 bytes and null bytes in the request line
//! and headers, SQL and HTML injection in a registration, CRLF in `state`.
//!
//! Each gets the expected 4xx — from Envoy, the filter or the service — and
//! never a 5xx; afterwards the filter still answers (no VM panicked) and every
//! process of the stack is alive. The same inputs straight at the service,
//! with database row counts: `authz-service/tests/hostile_input.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sekisho_e2e::{Stack, StackOptions, mcp};
use serde_json::{Value, json};

const NESTING: usize = 10_000;
const CALLBACK: &str = "http://127.0.0.1:33418/callback";

fn stack(extra: &[(&str, &str)]) -> Stack {
    let mut authz_env = vec![("SEKISHO_DEV_LOGIN".to_owned(), "1".to_owned())];
    authz_env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    Stack::start(StackOptions { authz_env, ..StackOptions::default() }).expect("the stack starts")
}

/// A request with a body, as bytes, through Envoy; status and body.
fn post(stack: &Stack, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String) {
    let mut request = stack.http().post(format!("{}{path}", stack.base_url())).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().unwrap_or_default())
}

fn mcp_headers(bearer: &str) -> Vec<(&'static str, String)> {
    vec![
        ("authorization", format!("Bearer {bearer}")),
        ("content-type", "application/json".to_owned()),
        ("accept", "application/json, text/event-stream".to_owned()),
    ]
}

fn post_mcp(stack: &Stack, bearer: &str, body: Vec<u8>) -> (u16, String) {
    let headers = mcp_headers(bearer);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    post(stack, "/mcp/demo", &headers, body)
}

/// The status of a request sent to Envoy byte for byte.
fn raw_status(stack: &Stack, request: &[u8]) -> u16 {
    let address = stack.base_url().trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).expect("connect to Envoy");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(request).expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&answer).into_owned();
    line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {line:?}"))
}

/// The filter still decides: a valid request passes.
fn assert_still_serving(stack: &mut Stack, token: &str) {
    let answer = stack.mcp_post("/mcp/demo", Some(token), &mcp::initialize_request(99)).expect("request");
    assert_eq!(answer.status, 200, "after hostile input a valid request fails: {}", answer.body);
    stack.check_alive().expect("every process of the stack is still running");
}

fn nested(depth: usize) -> Vec<u8> {
    let mut body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', depth));
    body.extend(std::iter::repeat_n(b']', depth));
    body.extend_from_slice(b"}}");
    body
}

#[test]
fn oversized_headers_bodies_and_tokens_are_refused() {
    let mut stack = stack(&[]);
    let read_only = stack.mint_token("demo", "mcp:read", "alice").unwrap();

    // Envoy's header limit (64 KiB): 431, on the MCP route and the service's.
    let big = "a".repeat(70 * 1024);
    for path in ["/mcp/demo", "/oauth/token"] {
        let response = stack.http().post(format!("{}{path}", stack.base_url())).header("x-big", &big).send().unwrap();
        assert_eq!(response.status().as_u16(), 431, "{path}");
    }

    // A JSON-RPC body the filter must read (the token lacks mcp:write) over
    // what Envoy buffers (1 MiB): 413.
    let mut huge =
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"t":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    huge.extend_from_slice(b"\"}}}");
    let (status, body) = post_mcp(&stack, &read_only, huge);
    assert_eq!(status, 413, "{body}");

    // A registration over the service's body limit (64 KiB): 413 from the service.
    let registration = json!({ "redirect_uris": [CALLBACK], "client_name": "a".repeat(100 * 1024) }).to_string();
    let (status, body) =
        post(&stack, "/oauth/register", &[("content-type", "application/json")], registration.into_bytes());
    assert_eq!(status, 413, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["error"], "invalid_request");

    // A bearer token over the filter's limit (8 KiB) but within Envoy's: 401.
    let token = format!("eyJ{}.eyJ{}.{}", "a".repeat(20_000), "b".repeat(20_000), "c".repeat(86));
    let answer = stack.mcp_post("/mcp/demo", Some(&token), &mcp::initialize_request(1)).unwrap();
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(answer.www_authenticate().is_some_and(|c| c.contains("invalid_token")), "{:?}", answer.headers);
    assert!(!answer.body.contains(&token[..100]), "the token is echoed");

    assert_still_serving(&mut stack, &read_only);
}

#[test]
fn broken_or_deeply_nested_json_rpc_bodies_never_panic_the_filter() {
    let mut stack = stack(&[]);
    let read_only = stack.mint_token("demo", "mcp:read", "alice").unwrap();
    let full = stack.mint_token("demo", "mcp:read mcp:write", "alice").unwrap();

    let batch_of_nested = {
        let mut body = b"[".to_vec();
        body.extend(nested(NESTING));
        body.push(b']');
        body
    };
    // (what, body, the filter's answer to a read-only token). A tools/call
    // with arguments nested 10k deep is still read (method and tool name,
    // the arguments skipped) and refused by scope; the rest are not JSON-RPC.
    let bodies: Vec<(&str, Vec<u8>, u16)> = vec![
        ("nested 10k levels", nested(NESTING), 403),
        ("a batch of nested", batch_of_nested, 403),
        ("bare nesting", vec![b'['; NESTING], 400),
        ("not UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\xff\xfe\"}".to_vec(), 400),
        // Well-formed, for a method nobody defined: unknown methods need mcp:write.
        ("a NUL in the method", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/\\u0000call\"}".to_vec(), 403),
        ("a raw NUL", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"\x00}".to_vec(), 400),
        ("truncated", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/ca".to_vec(), 400),
    ];
    for (what, body, expected) in &bodies {
        let (status, text) = post_mcp(&stack, &read_only, body.clone());
        assert_eq!(status, *expected, "{what}: {text}");
        // With every scope the filter need not read it; the MCP server refuses it.
        let (status, text) = post_mcp(&stack, &full, body.clone());
        assert!((400..500).contains(&status) || status == 200, "{what} with every scope: {status} {text}");
    }
    assert_still_serving(&mut stack, &read_only);
    let stats = stack.envoy_stats().unwrap();
    assert!(stats.contains("requests.denied.bad_request"), "{stats}");
}

#[test]
fn raw_bytes_that_are_not_utf8_and_null_bytes_are_refused() {
    let mut stack = stack(&[]);
    let read_only = stack.mint_token("demo", "mcp:read", "alice").unwrap();
    let requests: [&[u8]; 6] = [
        b"GET /oauth/authorize?client_id=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /mcp/demo\xff HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"POST /mcp/demo?api-key=sek_\xff HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"POST /mcp/demo HTTP/1.1\r\nHost: x\r\nX-API-Key: sek_\x00abc\r\nContent-Length: 0\r\n\r\n",
        b"POST /mcp/demo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\x00b\r\nContent-Length: 0\r\n\r\n",
        b"GET /oauth/authorize?state=a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for request in requests {
        let status = raw_status(&stack, request);
        assert!((400..500).contains(&status), "{status} for {:?}", String::from_utf8_lossy(request));
    }
    // Percent-encoded, the same bytes reach the filter and the service.
    let client = stack.http();
    for path in ["/mcp/%FF%FE", "/mcp/demo?api-key=sek_%FF%00", "/mcp/de%00mo"] {
        let response = client.post(format!("{}{path}", stack.base_url())).send().unwrap();
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{status} for {path}");
    }
    let response =
        client.get(format!("{}/oauth/authorize?client_id=%FF%FE&state=%00", stack.base_url())).send().unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.headers().get("location").is_none());
    assert_still_serving(&mut stack, &read_only);
}

#[test]
fn registration_injection_and_crlf_in_state_through_envoy() {
    let mut stack = stack(&[("SEKISHO_DEV_AUTO_CONSENT", "1")]);
    let json = [("content-type", "application/json")];
    let sql = "'; DROP TABLE oauth_clients; --";
    let body = json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none", "client_name": sql });
    let (status, text) = post(&stack, "/oauth/register", &json, body.to_string().into_bytes());
    assert_eq!(status, 201, "{text}");
    let registered: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(registered["client_name"], sql, "stored and echoed as data");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    // The table is still there: a second registration works.
    let (status, text) = post(&stack, "/oauth/register", &json, body.to_string().into_bytes());
    assert_eq!(status, 201, "{text}");

    let injected = json!({ "redirect_uris": [format!("{CALLBACK}\r\nSet-Cookie: a=b")] });
    let (status, text) = post(&stack, "/oauth/register", &json, injected.to_string().into_bytes());
    assert_eq!(status, 400, "{text}");
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap()["error"], "invalid_redirect_uri");

    let state = "x\r\nSet-Cookie: sekisho=evil\r\n\r\n<script>";
    let resource = format!("{}/mcp/demo", stack.base_url());
    let query: String = url_query(&[
        ("resource", &resource),
        ("response_type", "code"),
        ("client_id", &client_id),
        ("redirect_uri", CALLBACK),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
        ("scope", "mcp:read"),
        ("state", state),
    ]);
    let response = stack.http().get(format!("{}/oauth/authorize?{query}", stack.base_url())).send().unwrap();
    assert_eq!(response.status().as_u16(), 302);
    let location = response.headers().get("location").expect("Location").as_bytes().to_vec();
    assert!(!location.iter().any(|b| *b == b'\r' || *b == b'\n'), "Location contains CR/LF");
    assert!(
        response.headers().get_all("set-cookie").iter().all(|c| !c.as_bytes().starts_with(b"sekisho=evil")),
        "a header was injected"
    );
    let location = String::from_utf8(location).unwrap();
    assert!(location.starts_with(CALLBACK) && location.contains("code="), "{location}");
    let carried = location.split(['?', '&']).find_map(|p| p.strip_prefix("state=")).expect("state");
    assert!(carried.contains("%0D%0A") || carried.contains("%0d%0a"), "{carried}");
    stack.check_alive().expect("every process of the stack is still running");
}

fn url_query(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect::<Vec<_>>().join("&")
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
