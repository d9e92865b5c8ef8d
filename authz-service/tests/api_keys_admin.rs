//! API keys through the admin API: a key is shown once and stored only as a
//! keyed hash; bad input is a 400 with an RFC error code; revocation and
//! rotation behave as documented; every change is audited without the key.

mod api_keys_support;
mod common;

use api_keys_support::{audit_rows, audit_text, create_key, create_key_with, now, stored_hash, verify};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{ADMIN_TOKEN, on_each_backend};
use sekisho_contract::api_key::{self, InvalidReason, Verdict};
use serde_json::{Value, json};

#[tokio::test]
async fn a_new_key_is_shown_once_and_stored_only_as_a_keyed_hash() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let reply = t
            .admin(
                Method::POST,
                "/admin/v1/api-keys",
                Some(json!({ "name": "ci", "instances": ["demo"], "scope": "mcp:read", "expires_in": 3600 })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        assert_eq!(reply.header("cache-control"), "no-store");
        let created = reply.body;
        let id = created["id"].as_str().expect("id");
        let key = created["api_key"].as_str().expect("api_key");
        assert_eq!(reply.headers["location"], format!("/admin/v1/api-keys/{id}").as_str());
        assert_eq!(api_key::check_format(key), Ok(()));
        assert!(id.starts_with("ak_"));
        assert_eq!(created["display_prefix"], &key[..12]);
        assert_eq!(created["instances"], json!(["demo"]));
        assert_eq!(created["scope"], "mcp:read");
        assert_eq!(created["status"], "active");
        assert_eq!(created["created_by"], "admin-api");
        assert_eq!(created["use_count"], 0);
        assert!(created["last_used_at"].is_null() && created["revoked_at"].is_null());
        let expires_at = created["expires_at"].as_i64().expect("expires_at");
        assert!((now() + 3590..=now() + 3600).contains(&expires_at));

        let hash = stored_hash(&t, id).await;
        assert!(hash.starts_with("v1:") && !hash.contains(key), "{hash}");
        let mac = hash.rsplit(':').next().expect("MAC part");

        for path in ["/admin/v1/api-keys".to_owned(), format!("/admin/v1/api-keys/{id}")] {
            let reply = t.admin(Method::GET, &path, None).await;
            assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
            let text = reply.body.to_string();
            assert!(!text.contains(key) && !text.contains(mac) && !text.contains("api_key\""), "{text}");
            assert!(text.contains(id));
        }
        let listed = t.admin(Method::GET, "/admin/v1/api-keys", None).await;
        assert_eq!(listed.body["api_keys"][0]["display_prefix"], &key[..12]);
    })
    .await;
}

#[tokio::test]
async fn every_api_key_route_requires_the_admin_token() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let routes = [
            (Method::GET, "/admin/v1/api-keys"),
            (Method::POST, "/admin/v1/api-keys"),
            (Method::GET, "/admin/v1/api-keys/ak_x"),
            (Method::DELETE, "/admin/v1/api-keys/ak_x"),
            (Method::POST, "/admin/v1/api-keys/ak_x/rotate"),
        ];
        for (method, path) in routes {
            for authorization in [None, Some(format!("Bearer {ADMIN_TOKEN}x"))] {
                let mut request = Request::builder().method(method.clone()).uri(path);
                if let Some(value) = &authorization {
                    request = request.header(header::AUTHORIZATION, value);
                }
                let reply = t.send(request.body(Body::empty()).unwrap()).await;
                reply.assert_error(StatusCode::UNAUTHORIZED, "invalid_token");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn bad_input_is_a_400_with_a_code_and_creates_nothing() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        t.create_instance(json!({ "id": "ops", "tool_scopes": { "deploy": "ops:deploy" } })).await;
        let base = || json!({ "name": "k", "instances": ["demo"], "scope": "mcp:read" });
        let with = |field: &str, value: Value| {
            let mut body = base();
            body[field] = value;
            body
        };
        let cases = [
            (json!({}), "invalid_request"),
            (json!([]), "invalid_request"),
            (with("name", json!("")), "invalid_request"),
            (with("name", json!("a\nb")), "invalid_request"),
            (with("name", json!(5)), "invalid_request"),
            (with("instances", json!([])), "invalid_request"),
            (with("instances", json!("demo")), "invalid_request"),
            (with("instances", json!(["nope"])), "invalid_target"),
            (with("instances", json!(["demo", "nope"])), "invalid_target"),
            (with("instances", json!(["../demo"])), "invalid_target"),
            (with("scope", json!("")), "invalid_scope"),
            (with("scope", json!("mcp:read \"x\"")), "invalid_scope"),
            (with("scope", json!("offline_access")), "invalid_scope"),
            (with("scope", json!("ops:deploy")), "invalid_scope"),
            (with("scope", json!("x".repeat(2000))), "invalid_scope"),
            (with("expires_in", json!(0)), "invalid_request"),
            (with("expires_in", json!(-60)), "invalid_request"),
            (with("expires_in", json!("30d")), "invalid_request"),
            (with("expires_in", json!(1e30)), "invalid_request"),
            (with("expires_in", json!(i64::MAX)), "invalid_request"),
            (with("expires_at", json!(now() - 10)), "invalid_request"),
            (json!({ "name": "k", "instances": ["demo"], "scope": "mcp:read", "expires_in": 60, "expires_at": now() + 60 }), "invalid_request"),
            (with("owner", json!("me")), "invalid_request"),
        ];
        for (body, code) in cases {
            let reply = t.admin(Method::POST, "/admin/v1/api-keys", Some(body.clone())).await;
            assert_eq!((reply.status, reply.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{body}: {reply:?}");
        }
        for (content_type, raw) in [("application/json", "{"), ("text/plain", "{}"), ("application/json", "")] {
            let request = Request::post("/admin/v1/api-keys")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(raw))
                .unwrap();
            t.send(request).await.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys").fetch_one(t.app.db.pool()).await.unwrap();
        assert_eq!(count, 0);

        // A scope the instance's policy uses is fine, as is a list with repeats.
        let created = create_key_with(
            &t,
            json!({ "name": "deployer", "instances": ["ops", "ops"], "scope": "ops:deploy mcp:read" }),
        )
        .await;
        assert_eq!(created["instances"], json!(["ops"]));
        assert_eq!(created["scope"], "mcp:read ops:deploy");

        for (method, path) in [
            (Method::GET, "/admin/v1/api-keys/ak_nope"),
            (Method::DELETE, "/admin/v1/api-keys/ak_nope"),
            (Method::POST, "/admin/v1/api-keys/ak_nope/rotate"),
        ] {
            t.admin(method, path, None).await.assert_error(StatusCode::NOT_FOUND, "not_found");
        }
        let rotate = format!("/admin/v1/api-keys/{}/rotate", created["id"].as_str().unwrap());
        for body in [json!({ "grace_seconds": -1 }), json!({ "grace_seconds": 604_801 }), json!({ "grace": 5 }), json!("x")] {
            let reply = t.admin(Method::POST, &rotate, Some(body.clone())).await;
            reply.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
    })
    .await;
}

#[tokio::test]
async fn revoking_takes_effect_at_once_and_is_idempotent() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let created = create_key(&t, &["demo"], "mcp:read").await;
        let (id, key) = (created["id"].as_str().unwrap(), created["api_key"].as_str().unwrap());
        assert!(verify(&t, key).await.is_valid());

        let path = format!("/admin/v1/api-keys/{id}");
        let revoked = t.admin(Method::DELETE, &path, None).await;
        assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
        assert_eq!(revoked.body["status"], "revoked");
        let revoked_at = revoked.body["revoked_at"].as_i64().expect("revoked_at");
        assert!(revoked_at <= now());
        assert_eq!(verify(&t, key).await.verdict, Verdict::Invalid(InvalidReason::Revoked));

        let again = t.admin(Method::DELETE, &path, None).await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["revoked_at"], revoked_at, "a second revocation changes nothing");
        assert_eq!(audit_rows(&t, "api_key.revoked").await.len(), 1);

        let rotate = t.admin(Method::POST, &format!("{path}/rotate"), None).await;
        rotate.assert_error(StatusCode::CONFLICT, "conflict");
    })
    .await;
}

#[tokio::test]
async fn rotation_replaces_the_key_with_the_same_settings() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        t.create_instance(json!({ "id": "other" })).await;
        let old = create_key_with(
            &t,
            json!({ "name": "bot", "instances": ["demo", "other"], "scope": "mcp:write", "expires_in": 3600 }),
        )
        .await;
        let old_id = old["id"].as_str().unwrap();
        let old_key = old["api_key"].as_str().unwrap();

        let reply = t.admin(Method::POST, &format!("/admin/v1/api-keys/{old_id}/rotate"), None).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        assert_eq!(reply.header("cache-control"), "no-store");
        let new = reply.body;
        let new_key = new["api_key"].as_str().unwrap();
        assert_ne!(new_key, old_key);
        assert_ne!(new["id"], old["id"]);
        assert_eq!((&new["name"], &new["instances"], &new["scope"]), (&old["name"], &old["instances"], &old["scope"]));
        assert_eq!(new["rotated_from"], old_id);
        let lifetime = new["expires_at"].as_i64().unwrap() - new["created_at"].as_i64().unwrap();
        assert_eq!(lifetime, 3600, "the lifetime carries over");
        assert_eq!(new["previous"]["id"], old_id);
        assert_eq!(new["previous"]["status"], "revoked");

        assert_eq!(verify(&t, old_key).await.verdict, Verdict::Invalid(InvalidReason::Revoked));
        match verify(&t, new_key).await.verdict {
            Verdict::Valid(valid) => {
                assert_eq!(valid.key_id, new["id"].as_str().unwrap());
                assert_eq!(valid.instances, ["demo", "other"]);
                assert_eq!(valid.scope, "mcp:write");
            }
            other => panic!("the new key is not valid: {other:?}"),
        }
        let twice = t.admin(Method::POST, &format!("/admin/v1/api-keys/{old_id}/rotate"), None).await;
        twice.assert_error(StatusCode::CONFLICT, "conflict");
    })
    .await;
}

#[tokio::test]
async fn a_grace_period_keeps_the_old_key_until_it_ends() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let old = create_key(&t, &["demo"], "mcp:read").await;
        let (old_id, old_key) = (old["id"].as_str().unwrap(), old["api_key"].as_str().unwrap());
        let reply = t
            .admin(Method::POST, &format!("/admin/v1/api-keys/{old_id}/rotate"), Some(json!({ "grace_seconds": 20 })))
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
        assert_eq!(reply.body["previous"]["status"], "active");
        let revoke_at = reply.body["previous"]["revoked_at"].as_i64().unwrap();
        assert!((now() + 15..=now() + 20).contains(&revoke_at));

        let answer = verify(&t, old_key).await;
        assert!(answer.is_valid(), "still valid during the grace period");
        assert!(answer.cache_seconds <= 20, "never cached past the scheduled revocation: {answer:?}");
        assert!(verify(&t, reply.body["api_key"].as_str().unwrap()).await.is_valid());

        // Revoking during the grace period brings the revocation forward.
        let revoked = t.admin(Method::DELETE, &format!("/admin/v1/api-keys/{old_id}"), None).await;
        assert_eq!(revoked.body["status"], "revoked");
        assert_eq!(verify(&t, old_key).await.verdict, Verdict::Invalid(InvalidReason::Revoked));
    })
    .await;
}

#[tokio::test]
async fn every_change_is_audited_without_the_key() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let first = create_key(&t, &["demo"], "mcp:read").await;
        let first_id = first["id"].as_str().unwrap();
        let rotated = t.admin(Method::POST, &format!("/admin/v1/api-keys/{first_id}/rotate"), None).await;
        let second_id = rotated.body["id"].as_str().unwrap();
        t.admin(Method::DELETE, &format!("/admin/v1/api-keys/{second_id}"), None).await;

        let created = audit_rows(&t, "api_key.created").await;
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].0, "success");
        assert_eq!(created[0].2["key_id"], first_id);
        assert_eq!(created[0].2["display_prefix"], first["display_prefix"]);
        let rotation = audit_rows(&t, "api_key.rotated").await;
        assert_eq!(rotation.len(), 1);
        assert_eq!(rotation[0].2["key_id"], second_id);
        assert_eq!(rotation[0].2["rotated_from"]["key_id"], first_id);
        let revoked = audit_rows(&t, "api_key.revoked").await;
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].2["key_id"], second_id);

        let listed = t.admin(Method::GET, "/admin/v1/audit?event=api_key.created", None).await;
        assert_eq!(listed.body["events"][0]["actor"], "admin-api");

        let text = audit_text(&t).await;
        for (id, key) in [(first_id, &first["api_key"]), (second_id, &rotated.body["api_key"])] {
            let key = key.as_str().unwrap();
            let hash = stored_hash(&t, id).await;
            assert!(!text.contains(key) && !text.contains(&key[12..]), "a key leaked into the audit log");
            assert!(!text.contains(hash.rsplit(':').next().unwrap()), "a hash leaked into the audit log");
        }
    })
    .await;
}
