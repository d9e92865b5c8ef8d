//! The admin API: authentication, the instance registry, bad input, and the
//! audit trail of every change.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{ADMIN_TOKEN, TestApp, on_each_backend};
use serde_json::{Value, json};

async fn with_authorization(t: &TestApp, method: Method, path: &str, authorization: Option<&str>) -> common::Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    t.send(request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn every_admin_route_requires_the_admin_token() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let routes = [
            (Method::GET, "/admin/v1/instances"),
            (Method::POST, "/admin/v1/instances"),
            (Method::GET, "/admin/v1/instances/demo"),
            (Method::PUT, "/admin/v1/instances/demo"),
            (Method::DELETE, "/admin/v1/instances/demo"),
            (Method::GET, "/admin/v1/keys"),
            (Method::POST, "/admin/v1/keys/rotate"),
            (Method::POST, "/admin/v1/tokens"),
            (Method::GET, "/admin/v1/audit"),
        ];
        for (method, path) in routes {
            let reply = with_authorization(&t, method.clone(), path, None).await;
            reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
            assert_eq!(reply.header("www-authenticate"), "Bearer realm=\"sekisho-admin\"", "{method} {path}");
            let wrong = format!("Bearer {ADMIN_TOKEN}x");
            for authorization in [wrong.as_str(), "Bearer ", "Basic YWRtaW46YWRtaW4=", ADMIN_TOKEN] {
                let reply = with_authorization(&t, method.clone(), path, Some(authorization)).await;
                reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
                let challenge = reply.header("www-authenticate");
                assert_eq!(challenge, "Bearer realm=\"sekisho-admin\", error=\"invalid_token\"", "{method} {path}");
            }
        }
        let ok =
            with_authorization(&t, Method::GET, "/admin/v1/instances", Some(&format!("bearer {ADMIN_TOKEN}"))).await;
        assert_eq!(ok.status, StatusCode::OK, "the scheme is case-insensitive");
    })
    .await;
}

#[tokio::test]
async fn without_an_admin_token_the_admin_api_does_not_exist() {
    on_each_backend(|env| async move {
        let t = env.open_with(&[("SEKISHO_ADMIN_TOKEN", "")]).await;
        let reply =
            with_authorization(&t, Method::GET, "/admin/v1/instances", Some(&format!("Bearer {ADMIN_TOKEN}"))).await;
        reply.assert_error(StatusCode::NOT_FOUND, "not_found");
    })
    .await;
}

#[tokio::test]
async fn malformed_requests_get_400_json_errors_never_500() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let raw = |content_type: Option<&'static str>, body: &'static str| {
            let mut request =
                Request::post("/admin/v1/instances").header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"));
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            request.body(Body::from(body)).unwrap()
        };
        let json = Some("application/json");
        let cases = [
            raw(json, "{\"id\":"),
            raw(json, ""),
            raw(json, "[]"),
            raw(json, "null"),
            raw(json, "{\"id\": 5}"),
            raw(json, "{\"id\": \"demo\", \"auth_mode\": \"bogus\"}"),
            raw(json, "{\"id\": \"demo\", \"surprise\": true}"),
            raw(json, "{\"id\": \"demo\", \"tool_scopes\": [\"x\"]}"),
            raw(json, "{\"id\": \"de/mo\"}"),
            raw(json, "{\"id\": \"\"}"),
            raw(json, "{}"),
            raw(json, "{\"id\": \"demo\", \"tool_scopes\": {\"deploy\": \"two scopes\"}}"),
            raw(json, "{\"id\": \"demo\", \"method_scopes\": {\"tools/call\": \"bad\\\"scope\"}}"),
            raw(json, "{\"id\": \"demo\", \"display_name\": \"\"}"),
            raw(None, "{\"id\": \"demo\"}"),
            raw(Some("text/plain"), "{\"id\": \"demo\"}"),
            raw(json, "\u{feff}{\"id\": \"demo\"}"),
        ];
        for request in cases {
            let reply = t.send(request).await;
            reply.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
            assert!(reply.body["error_description"].is_string(), "{reply:?}");
        }
        for path in [
            "/admin/v1/audit?limit=abc",
            "/admin/v1/audit?limit=0",
            "/admin/v1/audit?limit=100000",
            "/admin/v1/audit?x=1",
        ] {
            t.admin(Method::GET, path, None).await.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
        for body in [json!({ "force": "maybe" }), json!({ "forse": true }), json!([1])] {
            t.admin(Method::POST, "/admin/v1/keys/rotate", Some(body))
                .await
                .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
        let mint = t.send(
            Request::post("/admin/v1/tokens")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"instance\": \"demo\", \"scope\": 7}"))
                .unwrap(),
        );
        mint.await.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        let oversized = format!("{{\"id\": \"demo\", \"display_name\": \"{}\"}}", "x".repeat(100_000));
        let reply = t.admin(Method::POST, "/admin/v1/instances", Some(serde_json::from_str(&oversized).unwrap())).await;
        assert!(reply.status.is_client_error(), "{:?}", reply.status);
        assert_eq!(t.admin(Method::GET, "/admin/v1/instances", None).await.body["instances"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn instances_can_be_created_read_changed_and_deleted() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let created = t
            .create_instance(json!({
                "id": "demo",
                "display_name": "Demo server",
                "auth_mode": "both",
                "tool_scopes": { "deploy": "mcp:admin" },
            }))
            .await;
        assert_eq!(created.header("location"), "/admin/v1/instances/demo");
        assert_eq!(created.body["resource"], "http://127.0.0.1:8080/mcp/demo");
        assert_eq!(
            created.body["resource_metadata"],
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp/demo"
        );
        assert_eq!(created.body["auth_mode"], "both");
        assert_eq!(created.body["tool_scopes"], json!({ "deploy": "mcp:admin" }));

        t.admin(Method::POST, "/admin/v1/instances", Some(json!({ "id": "demo" })))
            .await
            .assert_error(StatusCode::CONFLICT, "conflict");
        let shown = t.admin(Method::GET, "/admin/v1/instances/demo", None).await;
        assert_eq!(shown.body["display_name"], "Demo server");

        let spec =
            json!({ "display_name": "Demo", "auth_mode": "oauth", "method_scopes": { "tools/list": "mcp:write" } });
        let updated = t.admin(Method::PUT, "/admin/v1/instances/demo", Some(spec.clone())).await;
        assert_eq!(updated.status, StatusCode::OK, "{updated:?}");
        assert_eq!(updated.body["tool_scopes"], json!({}), "PUT replaces the settings");
        assert_eq!(updated.body["method_scopes"], json!({ "tools/list": "mcp:write" }));
        assert_eq!(t.admin(Method::PUT, "/admin/v1/instances/demo", Some(spec)).await.status, StatusCode::OK);
        let with_id = json!({ "id": "demo", "display_name": "Demo", "method_scopes": { "tools/list": "mcp:write" } });
        assert_eq!(t.admin(Method::PUT, "/admin/v1/instances/demo", Some(with_id)).await.status, StatusCode::OK);
        t.admin(Method::PUT, "/admin/v1/instances/demo", Some(json!({ "id": "other" })))
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        let put_new = t.admin(Method::PUT, "/admin/v1/instances/second", Some(json!({}))).await;
        assert_eq!(put_new.status, StatusCode::CREATED);
        assert_eq!(put_new.body["auth_mode"], "oauth", "the default auth mode");
        assert_eq!(put_new.body["display_name"], "second", "the default display name");

        let listed = t.admin(Method::GET, "/admin/v1/instances", None).await;
        let ids: Vec<&str> =
            listed.body["instances"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["demo", "second"]);

        assert_eq!(t.admin(Method::DELETE, "/admin/v1/instances/demo", None).await.status, StatusCode::NO_CONTENT);
        t.admin(Method::DELETE, "/admin/v1/instances/demo", None)
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
        t.admin(Method::GET, "/admin/v1/instances/demo", None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
        t.admin(Method::GET, "/admin/v1/instances/..", None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
    })
    .await;
}

fn events(reply: &common::Reply) -> Vec<Value> {
    reply.body["events"].as_array().expect("events").clone()
}

fn event_names(reply: &common::Reply) -> Vec<String> {
    events(reply).iter().map(|e| e["event"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn changes_are_audited_without_secrets() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let spec = json!({ "display_name": "Demo" });
        t.admin(Method::PUT, "/admin/v1/instances/demo", Some(spec.clone())).await;
        t.admin(Method::PUT, "/admin/v1/instances/demo", Some(spec)).await;
        t.admin(Method::POST, "/admin/v1/instances", Some(json!({ "id": "demo" }))).await;
        let token = t.mint("demo", "mcp:read").await;
        let rotation = t.admin(Method::POST, "/admin/v1/keys/rotate", None).await;
        t.admin(Method::DELETE, "/admin/v1/instances/demo", None).await;

        let all = t.admin(Method::GET, "/admin/v1/audit", None).await;
        assert_eq!(all.status, StatusCode::OK);
        assert_eq!(
            event_names(&all),
            [
                "instance.deleted",
                "key.rotated",
                "token.minted",
                "instance.updated",
                "instance.created",
                "key.generated",
                "key.generated",
            ],
            "newest first; the unchanged PUT and the refused POST wrote nothing"
        );
        for event in events(&all) {
            assert_eq!(event["outcome"], "success");
            assert!(event["at"].as_i64().unwrap() > 0);
        }

        let minted = t.admin(Method::GET, "/admin/v1/audit?event=token.minted", None).await;
        let minted = &events(&minted)[0];
        assert_eq!(minted["actor"], "admin-api");
        assert_eq!(minted["client_id"], "sekisho-admin");
        assert_eq!(minted["subject"], "sekisho-admin");
        assert_eq!(minted["details"]["aud"], json!(["http://127.0.0.1:8080/mcp/demo"]));
        let (claims, _) = common::verify(&token, &t.jwks().await).unwrap();
        assert_eq!(minted["details"]["jti"], claims.jti.as_str());

        let rotated = t.admin(Method::GET, "/admin/v1/audit?event=key.rotated&limit=1", None).await;
        assert_eq!(events(&rotated)[0]["details"]["current"], rotation.body["current"]);

        // No token, signature or private key material anywhere in the log.
        let text = all.body.to_string();
        let signature = token.rsplit('.').next().unwrap();
        assert!(!text.contains(&token) && !text.contains(signature));
        assert!(!text.contains("private") && !text.contains("v1:"), "{text}");
        assert_eq!(events(&t.admin(Method::GET, "/admin/v1/audit?limit=2", None).await).len(), 2);
    })
    .await;
}
