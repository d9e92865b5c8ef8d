//! Hostile input straight at the service (SPEC R1), on SQLite and PostgreSQL:
//! oversized bodies, headers and tokens, invalid UTF-8, JSON nested ten
//! thousand levels deep, SQL and HTML injection strings in every text field of
//! a registration, of the admin API's create calls and of token and
//! authorization requests, CRLF in redirect URIs and `state`, null bytes.
//!
//! Every answer is the expected 4xx (or a success that stores the string
//! verbatim, as data), never a 5xx; where a request must change nothing, the
//! row counts of every table but the audit log are the same before and after.
//! The same inputs through Envoy: `tests/tests/hostile_input.rs`.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use std::collections::BTreeMap;

use common::{ADMIN_TOKEN, TestApp, on_each_backend};
use oauth::{
    Answer, CALLBACK, HEADLESS, Server, authorize_path, code_request, get, http, pkce, post_form, post_json, register,
    serve,
};
use reqwest::StatusCode;
use sekisho_authz::App;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SQL_INJECTION: &[&str] = &[
    "' OR '1'='1",
    "'; DROP TABLE oauth_clients; --",
    "\" OR 1=1 --",
    "1; DELETE FROM instances",
    "x' UNION SELECT client_secret_hash FROM oauth_clients --",
];

const HTML_INJECTION: &[&str] =
    &["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "</title><svg onload=alert(1)>"];

/// Strings no text field may hold.
const CONTROL: &[&str] = &["a\u{0}b", "a\r\nSet-Cookie: x=y", "\u{0}"];

/// Every table whose rows a refused request must leave alone; the audit log
/// is left out because refusals are audited.
const TABLES: &[&str] = &[
    "api_keys",
    "authorization_codes",
    "authorization_requests",
    "consents",
    "instances",
    "oauth_clients",
    "oidc_logins",
    "refresh_families",
    "refresh_tokens",
    "revoked_access_tokens",
    "signing_keys",
    "users",
];

/// The body size the service refuses (its limit is 64 KiB).
const OVER_LIMIT: usize = 64 * 1024 + 1;
const NESTING: usize = 10_000;

async fn row_counts(app: &App) -> BTreeMap<&'static str, i64> {
    let mut counts = BTreeMap::new();
    for table in TABLES {
        let count: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(app.db.pool())
            .await
            .unwrap_or_else(|e| panic!("count {table}: {e}"));
        counts.insert(*table, count);
    }
    counts
}

fn hostile_strings() -> impl Iterator<Item = &'static str> {
    SQL_INJECTION.iter().chain(HTML_INJECTION).chain(CONTROL).copied()
}

/// A client mistake: 4xx, never a server error.
fn assert_refused(answer: &Answer, what: &str) {
    assert!(answer.status.is_client_error(), "{what}: {answer:?}");
}

/// The service with the `demo` instance and a listener. Rate limits are off:
/// these tests send hundreds of requests from one address on purpose.
async fn service(env: common::TestEnv, changes: &[(&str, &str)]) -> (TestApp, Server) {
    let mut changes = changes.to_vec();
    changes.push(("SEKISHO_RATE_LIMIT", "off"));
    let t = env.open_with(&changes).await;
    t.create_instance(json!({ "id": "demo" })).await;
    let server = serve(&t.app).await;
    (t, server)
}

async fn admin(server: &Server, method: reqwest::Method, path: &str, body: Option<&[u8]>) -> Answer {
    let mut request = http()
        .request(method, format!("{}/admin/v1{path}", server.base))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_vec());
    }
    Answer::of(request.send().await.expect("request")).await
}

async fn post_raw(server: &Server, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let request = http().post(format!("{}{path}", server.base)).header("content-type", content_type).body(body);
    Answer::of(request.send().await.expect("request")).await
}

/// Sends bytes as they are (reqwest would encode a request target) and returns
/// the status code of the answer.
async fn raw_status(server: &Server, request: &[u8]) -> u16 {
    let address = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {line:?}"))
}

fn nested_array(depth: usize) -> Vec<u8> {
    let mut body = vec![b'['; depth];
    body.extend(std::iter::repeat_n(b']', depth));
    body
}

fn nested_object(depth: usize) -> Vec<u8> {
    let mut body = b"{\"a\":".repeat(depth);
    body.extend_from_slice(b"1");
    body.extend(std::iter::repeat_n(b'}', depth));
    body
}

#[tokio::test]
async fn registration_stores_injection_strings_as_data_and_refuses_control_characters() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &[]).await;
        let mut registered = 0;
        for field in ["client_name", "software_id", "software_version", "contacts"] {
            for hostile in hostile_strings() {
                let value = if field == "contacts" { json!([hostile]) } else { json!(hostile) };
                let before = row_counts(&t.app).await;
                let answer =
                    post_json(&server, "/oauth/register", &json!({ "redirect_uris": [CALLBACK], field: value })).await;
                if CONTROL.contains(&hostile) {
                    answer.assert_error(400, "invalid_client_metadata");
                    assert_eq!(row_counts(&t.app).await, before, "{field} = {hostile:?} changed the database");
                } else {
                    assert_eq!(answer.status, StatusCode::CREATED, "{field} = {hostile:?}: {answer:?}");
                    assert_eq!(answer.json()[field], value, "{field} is stored verbatim");
                    registered += 1;
                }
            }
        }
        // Text fields that must be URIs, and the redirect URIs: refused, or
        // (a quote inside a well-formed URL) stored as it is.
        for field in ["client_uri", "logo_uri", "tos_uri", "policy_uri", "redirect_uris", "scope"] {
            for hostile in hostile_strings() {
                let candidates = [hostile.to_owned(), format!("https://client.example/{hostile}")];
                for candidate in candidates {
                    let body = if field == "redirect_uris" {
                        json!({ "redirect_uris": [candidate] })
                    } else {
                        json!({ "redirect_uris": [CALLBACK], field: candidate })
                    };
                    let before = row_counts(&t.app).await;
                    let answer = post_json(&server, "/oauth/register", &body).await;
                    if answer.status == StatusCode::CREATED {
                        assert!(!candidate.chars().any(char::is_control), "{field} = {candidate:?} was accepted");
                        registered += 1;
                    } else {
                        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field} = {candidate:?}: {answer:?}");
                        let code = answer.json()["error"].as_str().unwrap_or_default().to_owned();
                        assert!(
                            ["invalid_client_metadata", "invalid_redirect_uri"].contains(&code.as_str()),
                            "{field} = {candidate:?}: {answer:?}"
                        );
                        assert_eq!(row_counts(&t.app).await, before, "{field} = {candidate:?} changed the database");
                    }
                }
            }
        }
        // Nothing was dropped or deleted, and exactly the accepted clients exist.
        let counts = row_counts(&t.app).await;
        assert_eq!(counts["oauth_clients"], registered);
        assert_eq!(counts["instances"], 1);
    })
    .await;
}

#[tokio::test]
async fn the_consent_page_shows_html_injection_escaped() {
    on_each_backend(|env| async move {
        let (_t, server) = service(env, &[("SEKISHO_DEV_LOGIN", "1")]).await;
        for hostile in HTML_INJECTION {
            let client = register(
                &server,
                json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none", "client_name": hostile }),
            )
            .await;
            let pkce = pkce();
            let page =
                get(&server, &authorize_path(&code_request(&client.client_id, &pkce, "mcp:read", "s")), None).await;
            assert_eq!(page.status, StatusCode::OK, "{page:?}");
            assert!(page.header("content-type").starts_with("text/html"));
            let escaped =
                hostile.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
            assert!(page.text.contains(&escaped), "the page lacks {escaped:?}:\n{}", page.text);
            assert!(!page.text.contains(hostile), "the page contains {hostile:?} unescaped");
        }
    })
    .await;
}

#[tokio::test]
async fn crlf_in_redirect_uri_and_state_never_splits_the_location() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &HEADLESS).await;
        let before = row_counts(&t.app).await;
        let injected = format!("{CALLBACK}\r\nSet-Cookie: sekisho=evil");
        post_json(&server, "/oauth/register", &json!({ "redirect_uris": [injected] }))
            .await
            .assert_error(400, "invalid_redirect_uri");
        assert_eq!(row_counts(&t.app).await, before);

        let client =
            register(&server, json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" })).await;
        let pkce = pkce();
        // A redirect URI that is not the registered one: a page, never a redirect.
        let mut request = code_request(&client.client_id, &pkce, "mcp:read", "s");
        request.retain(|(name, _)| *name != "redirect_uri");
        request.push(("redirect_uri", &injected));
        get(&server, &authorize_path(&request), None).await.assert_error_page("invalid_request");

        // `state` with CRLF, on success and on a refusal sent to the client.
        let evil_state = "x\r\nSet-Cookie: sekisho=evil\r\n\r\n<script>alert(1)</script>";
        let mut refused = code_request(&client.client_id, &pkce, "mcp:read", evil_state);
        refused.retain(|(name, _)| *name != "code_challenge_method");
        refused.push(("code_challenge_method", "plain"));
        for (request, outcome) in
            [(code_request(&client.client_id, &pkce, "mcp:read", evil_state), "code"), (refused, "error")]
        {
            let answer = get(&server, &authorize_path(&request), None).await;
            assert_eq!(answer.status, StatusCode::FOUND, "{answer:?}");
            let raw = answer.headers.get("location").expect("Location").as_bytes();
            assert!(!raw.iter().any(|b| *b == b'\r' || *b == b'\n'), "Location contains CR/LF");
            assert!(
                answer.headers.get_all("set-cookie").iter().all(|c| !c.as_bytes().starts_with(b"sekisho=evil")),
                "a header was injected: {answer:?}"
            );
            let location = answer.location();
            assert!(location.as_str().starts_with(CALLBACK), "{location}");
            assert!(oauth::param(&location, outcome).is_some(), "{location}");
            assert_eq!(oauth::param(&location, "state").as_deref(), Some(evil_state), "state is carried as data");
        }
    })
    .await;
}

#[tokio::test]
async fn hostile_token_and_authorize_parameters_change_nothing() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &HEADLESS).await;
        let client =
            register(&server, json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" })).await;
        let before = row_counts(&t.app).await;
        for hostile in hostile_strings() {
            for field in ["grant_type", "code", "code_verifier", "refresh_token", "client_id", "resource", "scope"] {
                let mut form = vec![
                    ("grant_type", "authorization_code"),
                    ("code", "abc"),
                    ("code_verifier", "abcdefghijabcdefghijabcdefghijabcdefghij123"),
                    ("redirect_uri", CALLBACK),
                    ("client_id", client.client_id.as_str()),
                ];
                form.retain(|(name, _)| *name != field);
                form.push((field, hostile));
                assert_refused(&post_form(&server, "/oauth/token", &form, None).await, &format!("token {field}"));
                let json_body: serde_json::Map<String, Value> =
                    form.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
                assert_refused(&post_json(&server, "/oauth/token", &Value::Object(json_body)).await, "token (JSON)");
            }
            let refresh = [("grant_type", "refresh_token"), ("refresh_token", hostile), ("client_id", "x")];
            assert_refused(&post_form(&server, "/oauth/token", &refresh, None).await, "refresh");
            assert_refused(
                &post_form(&server, "/oauth/token", &[("grant_type", "client_credentials")], Some((hostile, hostile)))
                    .await,
                "client_credentials with a hostile Basic client",
            );
            for endpoint in ["/oauth/revoke", "/oauth/introspect"] {
                let answer = post_form(&server, endpoint, &[("token", hostile), ("client_id", hostile)], None).await;
                assert_refused(&answer, endpoint);
            }
            // Revocation by a real client of a token that is not ours: 200,
            // nothing revoked (RFC 7009 §2.2); a NUL is no token at all.
            let answer =
                post_form(&server, "/oauth/revoke", &[("token", hostile), ("client_id", &client.client_id)], None)
                    .await;
            if hostile.contains('\0') {
                answer.assert_error(400, "invalid_request");
            } else {
                assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
            }

            // Authorization requests naming no known client: a page, never a redirect.
            let pkce = pkce();
            let page = get(&server, &authorize_path(&code_request(hostile, &pkce, "mcp:read", "s")), None).await;
            assert_eq!(page.status, StatusCode::BAD_REQUEST, "{page:?}");
            assert!(page.headers.get("location").is_none());
            // A known client with a hostile resource or scope: refused at the client.
            for field in ["resource", "scope"] {
                let mut request = code_request(&client.client_id, &pkce, "mcp:read", "s");
                request.retain(|(name, _)| *name != field);
                request.push((field, hostile));
                let answer = get(&server, &authorize_path(&request), None).await;
                assert_eq!(answer.status, StatusCode::FOUND, "{field} = {hostile:?}: {answer:?}");
                let error = oauth::param(&answer.location(), "error");
                assert!(
                    matches!(error.as_deref(), Some("invalid_target" | "invalid_scope" | "invalid_request")),
                    "{field} = {hostile:?}: {answer:?}"
                );
            }
            // RFC 7592 management with hostile ids and tokens.
            let path = format!("/oauth/register/{}", urlencode(hostile));
            let answer = Answer::of(
                http().get(format!("{}{path}", server.base)).bearer_auth("x").send().await.expect("request"),
            )
            .await;
            assert_refused(&answer, "registration read");
        }
        assert_eq!(row_counts(&t.app).await, before, "hostile parameters changed the database");
        // The client and its instance still work.
        let tokens = oauth::tokens_for(&server, &client, "mcp:read").await;
        assert!(tokens["access_token"].is_string());
    })
    .await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

#[tokio::test]
async fn admin_create_calls_store_injection_strings_as_data_and_refuse_the_rest() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &[]).await;
        let post = reqwest::Method::POST;
        let mut instances = 1;
        let mut keys = 0;
        for hostile in hostile_strings() {
            let before = row_counts(&t.app).await;
            // An id is an identifier: every hostile string is refused.
            let body = json!({ "id": hostile }).to_string();
            admin(&server, post.clone(), "/instances", Some(body.as_bytes()))
                .await
                .assert_error(400, "invalid_request");
            // Scope overrides: method and tool names, and scopes (any RFC 6749
            // scope-token, quotes and angle brackets included), are data:
            // stored as sent (and removed again here), or refused.
            for field in ["method_scopes", "tool_scopes"] {
                for (name, scope) in [(hostile, "mcp:read"), ("tools/call", hostile)] {
                    let body = json!({ "id": "scoped", field: { name: scope } }).to_string();
                    let answer = admin(&server, post.clone(), "/instances", Some(body.as_bytes())).await;
                    if answer.status == StatusCode::CREATED {
                        assert!(!CONTROL.contains(&hostile), "{field} {name:?}: {scope:?} was accepted");
                        assert_eq!(answer.json()[field][name], scope);
                        let deleted = admin(&server, reqwest::Method::DELETE, "/instances/scoped", None).await;
                        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
                    } else {
                        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field} {name:?}: {scope:?}: {answer:?}");
                    }
                }
            }
            let body = json!({ "name": "k", "instances": [hostile], "scope": "mcp:read" }).to_string();
            assert_refused(&admin(&server, post.clone(), "/api-keys", Some(body.as_bytes())).await, "key instances");
            let body = json!({ "name": "k", "instances": ["demo"], "scope": hostile }).to_string();
            assert_refused(&admin(&server, post.clone(), "/api-keys", Some(body.as_bytes())).await, "key scope");
            // A minted token's `sub` and `client_id` may be any visible ASCII
            // (they are claims, not rows); anything else is refused.
            for field in ["sub", "client_id", "instance", "scope"] {
                let mut mint = json!({ "instance": "demo", "scope": "mcp:read" });
                mint[field] = json!(hostile);
                let body = mint.to_string();
                let answer = admin(&server, post.clone(), "/tokens", Some(body.as_bytes())).await;
                let identifier = hostile.bytes().all(|b| b.is_ascii_graphic());
                if matches!(field, "sub" | "client_id") && identifier {
                    assert_eq!(answer.status, StatusCode::OK, "mint {field} = {hostile:?}: {answer:?}");
                } else {
                    assert_refused(&answer, &format!("mint {field} = {hostile:?}"));
                }
            }
            let path = format!("/instances/{}", urlencode(hostile));
            assert_refused(&admin(&server, reqwest::Method::GET, &path, None).await, "instance lookup");
            assert_refused(&admin(&server, reqwest::Method::DELETE, &path, None).await, "instance delete");
            let path = format!("/api-keys/{}", urlencode(hostile));
            assert_refused(&admin(&server, reqwest::Method::DELETE, &path, None).await, "key revoke");
            assert_eq!(row_counts(&t.app).await, before, "{hostile:?} changed the database");

            // Display names and key names are text: stored verbatim, or refused if not printable.
            let id = format!("i{instances}");
            let body = json!({ "id": id, "display_name": hostile }).to_string();
            let answer = admin(&server, post.clone(), "/instances", Some(body.as_bytes())).await;
            if CONTROL.contains(&hostile) {
                answer.assert_error(400, "invalid_request");
            } else {
                assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
                assert_eq!(answer.json()["display_name"], hostile);
                instances += 1;
            }
            let body = json!({ "name": hostile, "instances": ["demo"], "scope": "mcp:read" }).to_string();
            let answer = admin(&server, post.clone(), "/api-keys", Some(body.as_bytes())).await;
            if CONTROL.contains(&hostile) {
                answer.assert_error(400, "invalid_request");
            } else {
                assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
                assert_eq!(answer.json()["name"], hostile);
                keys += 1;
            }
            let audit =
                admin(&server, reqwest::Method::GET, &format!("/audit?event={}", urlencode(hostile)), None).await;
            if hostile.contains('\0') {
                // A filter no event matches, or (PostgreSQL) one it cannot compare.
                assert!(matches!(audit.status.as_u16(), 200 | 400), "{audit:?}");
            } else {
                assert_eq!(audit.status, StatusCode::OK, "{audit:?}");
                assert_eq!(audit.json()["events"], json!([]));
            }
        }
        let counts = row_counts(&t.app).await;
        assert_eq!((counts["instances"], counts["api_keys"]), (instances, keys));
    })
    .await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &[]).await;
        let before = row_counts(&t.app).await;
        let form = format!("grant_type=client_credentials&scope={}", "a".repeat(OVER_LIMIT));
        let json_body = json!({ "client_name": "a".repeat(OVER_LIMIT), "redirect_uris": [CALLBACK] }).to_string();
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
            let answer = post_raw(&server, path, "application/x-www-form-urlencoded", form.clone().into_bytes()).await;
            answer.assert_error(413, "invalid_request");
        }
        for path in ["/oauth/register", "/internal/v1/api-keys/verify"] {
            post_raw(&server, path, "application/json", json_body.clone().into_bytes())
                .await
                .assert_error(413, "invalid_request");
        }
        let put = Answer::of(
            http()
                .put(format!("{}/oauth/register/x", server.base))
                .bearer_auth("x")
                .header("content-type", "application/json")
                .body(json_body.clone())
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert!(matches!(put.status.as_u16(), 401 | 413), "{put:?}");
        for path in ["/instances", "/api-keys", "/tokens", "/keys/rotate", "/api-keys/x/rotate"] {
            admin(&server, reqwest::Method::POST, path, Some(json_body.as_bytes()))
                .await
                .assert_error(413, "invalid_request");
        }
        assert_eq!(row_counts(&t.app).await, before);
    })
    .await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_overflowing_the_stack() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &[]).await;
        let before = row_counts(&t.app).await;
        for body in [nested_array(NESTING), nested_object(NESTING)] {
            for path in ["/oauth/register", "/oauth/token", "/oauth/revoke", "/internal/v1/api-keys/verify"] {
                let answer = post_raw(&server, path, "application/json", body.clone()).await;
                answer.assert_error(400, "invalid_request");
            }
            for path in ["/instances", "/api-keys", "/tokens", "/keys/rotate", "/api-keys/x/rotate"] {
                let answer = admin(&server, reqwest::Method::POST, path, Some(&body)).await;
                assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}: {answer:?}");
            }
            // Nested inside an otherwise valid registration.
            let mut inner = b"{\"redirect_uris\":[\"http://127.0.0.1:33418/callback\"],\"x\":".to_vec();
            inner.extend_from_slice(&body);
            inner.push(b'}');
            assert_refused(&post_raw(&server, "/oauth/register", "application/json", inner).await, "nested member");
        }
        assert_eq!(row_counts(&t.app).await, before);
        assert_eq!(get(&server, "/health", None).await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn invalid_utf8_is_invalid_request() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &[("SEKISHO_DEV_LOGIN", "1")]).await;
        let before = row_counts(&t.app).await;
        let form = b"grant_type=client_credentials&client_id=\xff\xfe".to_vec();
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
            post_raw(&server, path, "application/x-www-form-urlencoded", form.clone())
                .await
                .assert_error(400, "invalid_request");
        }
        let json_body =
            b"{\"redirect_uris\":[\"http://127.0.0.1:33418/callback\"],\"client_name\":\"\xff\xfe\"}".to_vec();
        for path in ["/oauth/register", "/oauth/token"] {
            post_raw(&server, path, "application/json", json_body.clone()).await.assert_error(400, "invalid_request");
        }
        let api_key = b"{\"api_key\":\"sek_\xff\"}".to_vec();
        post_raw(&server, "/internal/v1/api-keys/verify", "application/json", api_key)
            .await
            .assert_error(400, "invalid_request");
        let admin_body = b"{\"id\":\"x\",\"display_name\":\"\xc3\x28\"}";
        let answer = admin(&server, reqwest::Method::POST, "/instances", Some(admin_body)).await;
        answer.assert_error(400, "invalid_request");

        // Percent-encoded invalid UTF-8 in a query and in path parameters.
        let page = get(&server, "/oauth/authorize?response_type=code&client_id=%FF%FE&state=%C3%28", None).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{page:?}");
        assert!(page.headers.get("location").is_none());
        assert_refused(&admin(&server, reqwest::Method::GET, "/instances/%FF%FE", None).await, "instance path");
        let audit = admin(&server, reqwest::Method::GET, "/audit?event=%FF", None).await;
        assert!(matches!(audit.status.as_u16(), 200 | 400), "{audit:?}");
        assert_refused(&get(&server, "/.well-known/oauth-protected-resource/mcp/%FF", None).await, "metadata path");

        // Raw bytes that are not UTF-8 (nor ASCII) in the request target.
        let status = raw_status(&server, b"GET /oauth/authorize?client_id=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status, 400);
        let status = raw_status(&server, b"GET /admin/v1/instances/\xff HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(status, 400);
        assert_eq!(row_counts(&t.app).await, before);
    })
    .await;
}

#[tokio::test]
async fn oversized_headers_and_tokens_are_refused() {
    on_each_backend(|env| async move {
        let (t, server) = service(env, &[]).await;
        let before = row_counts(&t.app).await;
        let huge = "a".repeat(60 * 1024);
        let answer = Answer::of(
            http().get(format!("{}/admin/v1/instances", server.base)).bearer_auth(&huge).send().await.expect("request"),
        )
        .await;
        answer.assert_error(401, "invalid_token");
        // A token of almost the whole body limit: not ours, so not active.
        let client = oauth::register_python_style(&server).await;
        let secret = client.client_secret.clone().expect("a confidential client");
        let introspected =
            post_form(&server, "/oauth/introspect", &[("token", &huge)], Some((&client.client_id, &secret))).await;
        assert_eq!(introspected.status, StatusCode::OK, "{introspected:?}");
        assert_eq!(introspected.json(), json!({ "active": false }));
        let refreshed = post_form(
            &server,
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &huge)],
            Some((&client.client_id, &secret)),
        )
        .await;
        refreshed.assert_error(400, "invalid_grant");

        // More header fields than the HTTP server takes: 431, not a hang.
        let mut request = b"GET /health HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..200 {
            request.extend_from_slice(format!("X-Header-{i}: a\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        assert_eq!(raw_status(&server, &request).await, 431);
        let mut counts = row_counts(&t.app).await;
        counts.insert("oauth_clients", counts["oauth_clients"] - 1);
        assert_eq!(counts, before);
    })
    .await;
}
