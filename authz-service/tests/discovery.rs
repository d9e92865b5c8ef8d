//! Public and internal documents: protected-resource metadata (RFC 9728), the
//! filter policy, health, and JSON answers for unknown paths and methods.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::on_each_backend;
use sekisho_contract::policy::{AuthMode, FilterPolicy};
use serde_json::json;

#[tokio::test]
async fn protected_resource_metadata_is_exact() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({
            "id": "demo",
            "display_name": "Demo server",
            "tool_scopes": { "deploy": "ops:deploy", "whoami": "mcp:read" },
        }))
        .await;
        let expected = json!({
            "resource": "http://127.0.0.1:8080/mcp/demo",
            "authorization_servers": ["http://127.0.0.1:8080"],
            "scopes_supported": ["mcp:read", "mcp:write", "mcp:admin", "ops:deploy"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Demo server",
        });
        for path in
            ["/.well-known/oauth-protected-resource/mcp/demo", "/.well-known/oauth-protected-resource/mcp/demo/"]
        {
            let reply = t.get(path).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            assert_eq!(reply.body, expected, "{path}");
            assert_eq!(reply.header("cache-control"), "public, max-age=60");
        }
        // The gateway as a whole, for clients that look at the origin.
        let root = t.get("/.well-known/oauth-protected-resource").await;
        assert_eq!(
            root.body,
            json!({
                "resource": "http://127.0.0.1:8080",
                "authorization_servers": ["http://127.0.0.1:8080"],
                "scopes_supported": ["mcp:read", "mcp:write", "mcp:admin"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Sekisho MCP gateway",
            })
        );
        for unknown in
            ["/.well-known/oauth-protected-resource/mcp/nope", "/.well-known/oauth-protected-resource/mcp/%2e%2e"]
        {
            t.get(unknown).await.assert_error(StatusCode::NOT_FOUND, "not_found");
        }
    })
    .await;
}

#[tokio::test]
async fn discovery_documents_allow_cross_origin_reads() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .uri("/.well-known/oauth-protected-resource")
            .header(header::ORIGIN, "http://localhost:6274")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "mcp-protocol-version")
            .body(Body::empty())
            .unwrap();
        let reply = t.send(preflight).await;
        assert!(reply.status.is_success(), "{reply:?}");
        assert_eq!(reply.header("access-control-allow-origin"), "*");
    })
    .await;
}

#[tokio::test]
async fn the_filter_policy_lists_every_instance_with_its_auth_mode() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let empty: FilterPolicy = serde_json::from_value(t.get("/internal/v1/filter-policy").await.body).unwrap();
        assert_eq!(empty, FilterPolicy { issuer: common::ISSUER.into(), instances: vec![], revoked: vec![] });
        t.create_instance(json!({ "id": "demo", "tool_scopes": { "deploy": "mcp:admin" } })).await;
        t.create_instance(json!({ "id": "legacy", "auth_mode": "api_key" })).await;
        t.create_instance(json!({ "id": "open", "auth_mode": "none", "method_scopes": { "tools/list": "mcp:write" } }))
            .await;
        let reply = t.get("/internal/v1/filter-policy").await;
        assert_eq!(reply.status, StatusCode::OK);
        let policy: FilterPolicy = serde_json::from_value(reply.body).expect("the contract's FilterPolicy");
        assert_eq!(policy.issuer, common::ISSUER);
        assert_eq!(policy.instances.len(), 3);
        let demo = policy.instance("demo").unwrap();
        assert_eq!(demo.auth_mode, AuthMode::Oauth);
        assert_eq!(demo.tool_scopes.get("deploy").map(String::as_str), Some("mcp:admin"));
        assert_eq!(policy.instance("legacy").unwrap().auth_mode, AuthMode::ApiKey);
        let open = policy.instance("open").unwrap();
        assert_eq!(open.auth_mode, AuthMode::None);
        assert_eq!(open.method_scopes.get("tools/list").map(String::as_str), Some("mcp:write"));
    })
    .await;
}

#[tokio::test]
async fn health_reports_the_database() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let reply = t.get("/health").await;
        assert_eq!((reply.status, reply.body.clone()), (StatusCode::OK, json!({ "status": "ok", "database": "ok" })));
        t.app.db.close().await;
        let reply = t.get("/health").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.body["database"], "error");
        // With the database gone, requests that need it are 503 with Retry-After, not 500.
        let reply = t.get("/internal/v1/filter-policy").await;
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
        assert_eq!(reply.header("retry-after"), "5");
        // Keys are in memory: the JWKS keeps being served.
        assert_eq!(t.get("/oauth/jwks").await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.get("/nope").await.assert_error(StatusCode::NOT_FOUND, "not_found");
        t.get("/admin/v1/nope").await.assert_error(StatusCode::NOT_FOUND, "not_found");
        let delete = Request::delete("/oauth/jwks").body(Body::empty()).unwrap();
        t.send(delete).await.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    })
    .await;
}
