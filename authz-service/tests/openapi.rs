//! The OpenAPI document (`authz-service/openapi.json`) and the router agree:
//! the service serves the committed file unchanged, every documented
//! operation is answered by a handler, no documented path answers a method the
//! document does not list, and every route the source registers is documented.
//!
//! Routing does not depend on the database, so these run on SQLite only.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{ADMIN_TOKEN, Backend, TestApp, TestEnv, run_on};
use serde_json::Value;
use tower::ServiceExt;

/// Every route the source registers, as axum writes its template (admin
/// routes with their `/admin/v1` prefix). When you add a route, add it here
/// and describe it in `openapi.json`; `every_route_in_the_source_is_documented`
/// counts the `.route(` calls so that neither can be forgotten.
const ROUTES: &[&str] = &[
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/{*path}",
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/{*path}",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp/{id}",
    "/.well-known/oauth-protected-resource/mcp/{id}/",
    "/oauth/jwks",
    "/.well-known/jwks.json",
    "/oauth/register",
    "/oauth/register/{client_id}",
    "/oauth/authorize",
    "/oauth/authorize/continue",
    "/oauth/authorize/consent",
    "/oauth/callback",
    "/oauth/login/unavailable",
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
    "/health",
    "/metrics",
    "/openapi.json",
    "/internal/v1/filter-policy",
    "/internal/v1/api-keys/verify",
    "/admin/v1/instances",
    "/admin/v1/instances/{id}",
    "/admin/v1/keys",
    "/admin/v1/keys/rotate",
    "/admin/v1/tokens",
    "/admin/v1/api-keys",
    "/admin/v1/api-keys/{id}",
    "/admin/v1/api-keys/{id}/rotate",
    "/admin/v1/audit",
];

const METHODS: [&str; 4] = ["get", "post", "put", "delete"];

fn committed() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn document() -> Value {
    serde_json::from_slice(&committed()).expect("openapi.json is JSON")
}

/// `(path, method)` of every documented operation.
fn operations(document: &Value) -> Vec<(String, String)> {
    let paths = document["paths"].as_object().expect("`paths` is an object");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if item.get(method).is_some() {
                operations.push((path.clone(), method.to_owned()));
            }
        }
    }
    operations
}

/// A concrete URL for a documented path: parameters filled in with values
/// that exist (`demo`) or are merely well-formed.
fn concrete(path: &str) -> String {
    path.replace("{id}", "demo").replace("{client_id}", "no-such-client").replace("{path}", "mcp/demo")
}

/// The app with an upstream OpenID provider configured, so that its two
/// routes are mounted too (nothing is fetched until a login starts).
async fn open_everything(env: &TestEnv) -> TestApp {
    let app = env
        .open_with(&[
            ("SEKISHO_OIDC_ISSUER", "http://127.0.0.1:9"),
            ("SEKISHO_OIDC_CLIENT_ID", "sekisho"),
            ("SEKISHO_OIDC_CLIENT_SECRET", "openapi-test-upstream-secret"),
        ])
        .await;
    app.create_instance(serde_json::json!({ "id": "demo" })).await;
    app
}

/// Status and body of a request with the admin token (harmless elsewhere).
async fn call(app: &TestApp, method: &str, uri: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method"))
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .expect("request");
    let response = app.router.clone().oneshot(request).await.expect("router is infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    (status, body.to_vec())
}

/// The router's own 404 for a path it has no route for (a handler's 404 for a
/// missing record says what is missing).
fn is_unrouted(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::NOT_FOUND
        && serde_json::from_slice::<Value>(body)
            .is_ok_and(|v| v["error_description"].as_str() == Some("no such endpoint"))
}

#[tokio::test]
async fn the_service_serves_the_committed_document() {
    run_on(Backend::Sqlite, &|env: TestEnv| async move {
        let app = env.open().await;
        let response = app
            .router
            .clone()
            .oneshot(Request::get("/openapi.json").body(Body::empty()).expect("request"))
            .await
            .expect("router is infallible");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let served = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        assert!(served.as_ref() == committed().as_slice(), "GET /openapi.json differs from authz-service/openapi.json");
        let document = document();
        assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "not OpenAPI 3.x");
        for scheme in ["adminToken", "registrationAccessToken", "clientSecretBasic"] {
            assert!(document["components"]["securitySchemes"][scheme].is_object(), "no security scheme {scheme}");
        }
    })
    .await;
}

#[tokio::test]
async fn every_documented_operation_is_answered_by_a_handler() {
    run_on(Backend::Sqlite, &|env: TestEnv| async move {
        let app = open_everything(&env).await;
        let operations = operations(&document());
        assert!(operations.len() >= 40, "only {} operations documented", operations.len());
        for (path, method) in operations {
            let uri = concrete(&path);
            let (status, body) = call(&app, &method, &uri).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri} is documented but not routed");
            assert!(!is_unrouted(status, &body), "{method} {uri} is documented but not routed");
            // 503 is a documented answer (the login-unavailable page); 500 never is.
            assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {uri}: {}", String::from_utf8_lossy(&body));
        }
    })
    .await;
}

#[tokio::test]
async fn documented_paths_answer_no_undocumented_method() {
    run_on(Backend::Sqlite, &|env: TestEnv| async move {
        let app = open_everything(&env).await;
        let document = document();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for method in METHODS.into_iter().filter(|m| item.get(*m).is_none()) {
                let uri = concrete(path);
                let (status, body) = call(&app, method, &uri).await;
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} is not documented but answered: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    })
    .await;
}

#[test]
fn every_route_in_the_source_is_documented() {
    let documented: BTreeSet<String> = document()["paths"].as_object().expect("paths").keys().cloned().collect();
    let known: BTreeSet<String> = ROUTES.iter().map(|r| r.replace("{*path}", "{path}")).collect();
    assert_eq!(known, documented, "ROUTES and openapi.json `paths` differ");

    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let registered = count_route_calls(&src);
    assert_eq!(
        registered,
        ROUTES.len(),
        "the source registers {registered} routes (`.route(` calls) but ROUTES lists {}: \
         document the new route in openapi.json and add it to ROUTES",
        ROUTES.len()
    );
}

fn count_route_calls(dir: &Path) -> usize {
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            count += count_route_calls(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            count += text.matches(".route(").count();
        }
    }
    count
}
