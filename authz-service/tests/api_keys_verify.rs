//! The filter's side of API keys: `POST /internal/v1/api-keys/verify`, read with
//! the contract types the filter uses, and the batched recording of usage and
//! refusals behind it.

mod api_keys_support;
mod common;

use std::time::Duration;

use api_keys_support::{
    audit_rows, audit_text, create_key, create_key_with, now, unissued_key, verify, verify_raw, with_bad_checksum,
};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{TestApp, on_each_backend};
use sekisho_authz::api_keys::activity::{self, Activity, Flushed};
use sekisho_contract::api_key::{InvalidReason, Verdict};
use sekisho_contract::paths;
use serde_json::json;

async fn usage(t: &TestApp, id: &str) -> (i64, Option<i64>) {
    sqlx::query_as("SELECT use_count, last_used_at FROM api_keys WHERE id = $1")
        .bind(id)
        .fetch_one(t.app.db.pool())
        .await
        .expect("the key exists")
}

#[tokio::test]
async fn a_valid_key_comes_with_its_instances_scope_and_cache_time() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        t.create_instance(json!({ "id": "other" })).await;
        let created = create_key(&t, &["demo", "other"], "mcp:write mcp:read").await;
        let key = created["api_key"].as_str().unwrap();

        let reply = verify_raw(&t, key).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body,
            json!({
                "valid": true,
                "key_id": created["id"],
                "instances": ["demo", "other"],
                "scope": "mcp:read mcp:write",
                "expires_at": null,
                "cache_seconds": 30,
            })
        );
        let answer = verify(&t, key).await;
        assert_eq!(answer.cache_seconds, 30);
        let Verdict::Valid(valid) = answer.verdict else { panic!("not valid: {answer:?}") };
        assert_eq!(valid.key_id, created["id"].as_str().unwrap());
        assert_eq!(valid.expires_at, None);
    })
    .await;
}

#[tokio::test]
async fn the_cache_time_is_the_configured_bound_and_never_outlives_the_key() {
    on_each_backend(|env| async move {
        let t = env.open_with(&[("SEKISHO_API_KEY_CACHE_SECONDS", "12")]).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let lasting = create_key(&t, &["demo"], "mcp:read").await;
        assert_eq!(verify(&t, lasting["api_key"].as_str().unwrap()).await.cache_seconds, 12);
        let unknown = verify(&t, &unissued_key()).await;
        assert_eq!((unknown.verdict, unknown.cache_seconds), (Verdict::Invalid(InvalidReason::Unknown), 12));

        let brief = create_key_with(
            &t,
            json!({ "name": "brief", "instances": ["demo"], "scope": "mcp:read", "expires_in": 5 }),
        )
        .await;
        let answer = verify(&t, brief["api_key"].as_str().unwrap()).await;
        let Verdict::Valid(valid) = &answer.verdict else { panic!("not valid: {answer:?}") };
        assert_eq!(valid.expires_at, brief["expires_at"].as_i64());
        assert!((1..=5).contains(&answer.cache_seconds), "{answer:?}");
    })
    .await;
}

#[tokio::test]
async fn malformed_keys_are_refused_without_a_database_lookup() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let key = create_key(&t, &["demo"], "mcp:read").await["api_key"].as_str().unwrap().to_owned();
        // With the pool closed, any query fails (503); a malformed key still gets its answer.
        t.app.db.close().await;
        for bad in [with_bad_checksum(&key), key[..key.len() - 1].to_owned(), "hunter2".into(), String::new()] {
            let answer = verify(&t, &bad).await;
            assert_eq!(answer.verdict, Verdict::Invalid(InvalidReason::Malformed), "{bad}");
            assert_eq!(answer.cache_seconds, 30);
        }
        let looked_up = verify_raw(&t, &key).await;
        looked_up.assert_error(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable");
    })
    .await;
}

#[tokio::test]
async fn unknown_revoked_and_expired_keys_are_refused_with_their_reason() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        assert_eq!(verify(&t, &unissued_key()).await.verdict, Verdict::Invalid(InvalidReason::Unknown));

        let revoked = create_key(&t, &["demo"], "mcp:read").await;
        let revoked_id = revoked["id"].as_str().unwrap();
        t.admin(axum::http::Method::DELETE, &format!("/admin/v1/api-keys/{revoked_id}"), None).await;
        assert_eq!(
            verify(&t, revoked["api_key"].as_str().unwrap()).await.verdict,
            Verdict::Invalid(InvalidReason::Revoked)
        );

        let expired =
            create_key_with(&t, json!({ "name": "old", "instances": ["demo"], "scope": "mcp:read", "expires_in": 60 }))
                .await;
        let expired_key = expired["api_key"].as_str().unwrap();
        assert!(verify(&t, expired_key).await.is_valid());
        sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
            .bind(now() - 1)
            .bind(expired["id"].as_str().unwrap())
            .execute(t.app.db.pool())
            .await
            .unwrap();
        assert_eq!(verify(&t, expired_key).await.verdict, Verdict::Invalid(InvalidReason::Expired));

        // Revocation wins over expiry.
        sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
            .bind(now() - 1)
            .bind(revoked_id)
            .execute(t.app.db.pool())
            .await
            .unwrap();
        assert_eq!(
            verify(&t, revoked["api_key"].as_str().unwrap()).await.verdict,
            Verdict::Invalid(InvalidReason::Revoked)
        );
    })
    .await;
}

#[tokio::test]
async fn unreadable_requests_are_400_and_only_post_is_allowed() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        for (content_type, body) in [
            ("application/json", "{"),
            ("application/json", "{}"),
            ("application/json", r#"{"api_key": 5}"#),
            ("application/json", r#"{"api_key": "sek_x", "instance": "demo"}"#),
            ("text/plain", r#"{"api_key": "sek_x"}"#),
        ] {
            let request = Request::post(paths::API_KEY_VERIFY)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap();
            t.send(request).await.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
        let get = t.get(paths::API_KEY_VERIFY).await;
        get.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    })
    .await;
}

#[tokio::test]
async fn usage_is_written_in_batches_not_per_verification() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let created = create_key(&t, &["demo"], "mcp:read").await;
        let (id, key) = (created["id"].as_str().unwrap(), created["api_key"].as_str().unwrap());
        let before = now();
        for _ in 0..5 {
            assert!(verify(&t, key).await.is_valid());
        }
        assert_eq!(usage(&t, id).await, (0, None), "no write per verification");

        let flushed = t.app.api_key_activity.flush(&t.app.db).await.unwrap();
        assert_eq!(flushed, Flushed { keys_updated: 1, audit_rows: 0 }, "one UPDATE for five uses");
        let (count, last_used_at) = usage(&t, id).await;
        assert_eq!(count, 5);
        assert!(last_used_at.is_some_and(|at| at >= before && at <= now()));

        verify(&t, key).await;
        t.app.api_key_activity.flush(&t.app.db).await.unwrap();
        // The sixth use may fall in a later second than the first five.
        let (count, last_used_after) = usage(&t, id).await;
        assert_eq!(count, 6);
        assert!(last_used_after >= last_used_at && last_used_after.is_some_and(|at| at <= now()));
        let shown = t.admin(axum::http::Method::GET, &format!("/admin/v1/api-keys/{id}"), None).await;
        assert_eq!(shown.body["use_count"], 6);
        assert_eq!(shown.body["last_used_at"], last_used_after.unwrap_or_default());
        assert_eq!(t.app.api_key_activity.flush(&t.app.db).await.unwrap(), Flushed::default());
    })
    .await;
}

#[tokio::test]
async fn refusals_are_audited_in_batches_without_the_key() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let revoked = create_key(&t, &["demo"], "mcp:read").await;
        let revoked_id = revoked["id"].as_str().unwrap();
        let revoked_key = revoked["api_key"].as_str().unwrap();
        t.admin(axum::http::Method::DELETE, &format!("/admin/v1/api-keys/{revoked_id}"), None).await;

        let guesses: Vec<String> = (0..20).map(|_| unissued_key()).collect();
        for guess in &guesses {
            verify(&t, guess).await;
        }
        verify(&t, revoked_key).await;
        verify(&t, revoked_key).await;
        verify(&t, "not-a-key-password123").await;
        assert!(audit_rows(&t, "api_key.refused").await.is_empty(), "nothing written per request");

        let flushed = t.app.api_key_activity.flush(&t.app.db).await.unwrap();
        assert_eq!(flushed.audit_rows, 3);
        let rows = audit_rows(&t, "api_key.refused").await;
        let by_reason = |reason: &str| {
            rows.iter().find(|r| r.1.as_deref() == Some(reason)).unwrap_or_else(|| panic!("no {reason} row"))
        };
        let unknown = by_reason("unknown");
        assert_eq!((unknown.0.as_str(), &unknown.2["count"]), ("failure", &json!(20)));
        assert_eq!(unknown.2["display_prefixes"].as_array().map(Vec::len), Some(10));
        let refused_revoked = by_reason("revoked");
        assert_eq!(refused_revoked.2["key_id"], revoked_id);
        assert_eq!(refused_revoked.2["count"], 2);
        assert_eq!(refused_revoked.2["display_prefix"], revoked["display_prefix"]);
        let malformed = by_reason("malformed");
        assert_eq!(malformed.2["count"], 1);

        let text = audit_text(&t).await;
        assert!(!text.contains("password123"), "a malformed key may be anything; it is not logged");
        assert!(!text.contains(&revoked_key[12..]));
        for guess in &guesses {
            assert!(!text.contains(&guess[12..]));
        }
    })
    .await;
}

#[tokio::test]
async fn a_failed_flush_keeps_its_batch_for_the_next_one() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let id = create_key(&t, &["demo"], "mcp:read").await["id"].as_str().unwrap().to_owned();
        let activity = Activity::default();
        activity.record_use(&id, now());
        activity.record_use(&id, now());

        let down = env.open().await;
        down.app.db.close().await;
        assert!(activity.flush(&down.app.db).await.is_err());
        activity.record_use(&id, now());
        assert_eq!(activity.flush(&t.app.db).await.unwrap().keys_updated, 1);
        assert_eq!(usage(&t, id.as_str()).await.0, 3);
    })
    .await;
}

#[tokio::test]
async fn the_flusher_writes_periodically_and_once_more_when_stopped() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let created = create_key(&t, &["demo"], "mcp:read").await;
        let (id, key) = (created["id"].as_str().unwrap(), created["api_key"].as_str().unwrap());

        let periodic = activity::spawn(t.app.api_key_activity.clone(), t.app.db.clone(), Duration::from_millis(100));
        verify(&t, key).await;
        let mut waited = Duration::ZERO;
        while usage(&t, id).await.0 == 0 {
            assert!(waited < Duration::from_secs(10), "no periodic flush");
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += Duration::from_millis(50);
        }
        periodic.stop().await;

        let at_shutdown = activity::spawn(t.app.api_key_activity.clone(), t.app.db.clone(), Duration::from_secs(3600));
        verify(&t, key).await;
        verify(&t, key).await;
        at_shutdown.stop().await;
        assert_eq!(usage(&t, id).await.0, 3, "stopping flushes what is pending");
    })
    .await;
}
