//! Signing keys, the JWKS and minted access tokens, as the filter will see them.

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{kids, on_each_backend, verify};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use sekisho_authz::audit::Actor;
use sekisho_authz::keys;
use sekisho_contract::claims::{Audience, ClaimsError, Expectations};
use sekisho_contract::jwk::thumbprint;
use serde_json::json;

const DEMO: &str = "http://127.0.0.1:8080/mcp/demo";
const OTHER: &str = "http://127.0.0.1:8080/mcp/other";

fn expect(audience: &str, now: i64) -> Expectations<'_> {
    Expectations { issuer: common::ISSUER, audience, now, leeway: 30 }
}

#[tokio::test]
async fn jwks_publishes_the_current_and_the_next_key() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let reply = t.get("/oauth/jwks").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("cache-control"), "public, max-age=60");
        let jwks = t.jwks().await;
        assert_eq!(jwks.keys.len(), 2, "current + next");
        for jwk in &jwks.keys {
            let key = jwk.verifying_key().expect("an ES256 JWK");
            assert_eq!(jwk.kid.as_deref(), Some(thumbprint(&key).as_str()));
            assert_eq!((jwk.alg.as_deref(), jwk.use_.as_deref()), (Some("ES256"), Some("sig")));
        }
        let signing = t.app.keys.current().signer().kid().to_owned();
        assert_eq!(kids(&jwks)[0], signing, "the current key comes first");
        assert_eq!(t.get("/.well-known/jwks.json").await.body, reply.body);
    })
    .await;
}

#[tokio::test]
async fn a_minted_token_verifies_for_its_instance_only() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        t.create_instance(json!({ "id": "other" })).await;
        let reply = t
            .admin(
                Method::POST,
                "/admin/v1/tokens",
                Some(json!({ "instance": "demo", "scope": "mcp:write mcp:read", "sub": "alice", "client_id": "cli" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.header("cache-control"), "no-store");
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(reply.body["expires_in"], 900);
        assert_eq!(reply.body["scope"], "mcp:read mcp:write");
        let token = reply.body["access_token"].as_str().unwrap();

        let (claims, kid) = verify(token, &t.jwks().await).expect("verifies against the JWKS");
        assert_eq!(kid, t.app.keys.current().signer().kid());
        assert_eq!(claims.iss, common::ISSUER);
        assert_eq!(claims.aud, Audience::One(DEMO.into()));
        assert_eq!((claims.sub.as_str(), claims.client_id.as_str()), ("alice", "cli"));
        assert_eq!(claims.nbf, Some(claims.iat));
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(expect(DEMO, claims.iat).check(&claims), Ok(()));
        assert_eq!(expect(OTHER, claims.iat).check(&claims), Err(ClaimsError::WrongAudience));
        assert_eq!(expect(DEMO, claims.exp + 31).check(&claims), Err(ClaimsError::Expired));

        // The resource form, with the one trailing slash some clients add.
        let reply = t
            .admin(
                Method::POST,
                "/admin/v1/tokens",
                Some(json!({ "resource": format!("{DEMO}/"), "scope": "mcp:read" })),
            )
            .await;
        let (claims, _) = verify(reply.body["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.aud, Audience::One(DEMO.into()), "aud is canonical");
        assert_eq!(claims.sub, "sekisho-admin");
    })
    .await;
}

#[tokio::test]
async fn token_requests_for_unknown_targets_or_scopes_are_refused() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo", "tool_scopes": { "deploy": "ops:deploy" } })).await;
        let mint = |body: serde_json::Value| t.admin(Method::POST, "/admin/v1/tokens", Some(body));
        let bad_request = StatusCode::BAD_REQUEST;
        mint(json!({ "instance": "nope", "scope": "mcp:read" })).await.assert_error(bad_request, "invalid_target");
        mint(json!({ "instance": "../x", "scope": "mcp:read" })).await.assert_error(bad_request, "invalid_target");
        mint(json!({ "resource": "http://elsewhere:8080/mcp/demo", "scope": "mcp:read" }))
            .await
            .assert_error(bad_request, "invalid_target");
        mint(json!({ "resource": format!("{DEMO}#x"), "scope": "mcp:read" }))
            .await
            .assert_error(bad_request, "invalid_target");
        mint(json!({ "instance": "demo", "resource": DEMO, "scope": "mcp:read" }))
            .await
            .assert_error(bad_request, "invalid_request");
        mint(json!({ "scope": "mcp:read" })).await.assert_error(bad_request, "invalid_request");
        mint(json!({ "instance": "demo" })).await.assert_error(bad_request, "invalid_scope");
        mint(json!({ "instance": "demo", "scope": "tool:other" })).await.assert_error(bad_request, "invalid_scope");
        mint(json!({ "instance": "demo", "scope": "mcp:read offline_access" }))
            .await
            .assert_error(bad_request, "invalid_scope");
        mint(json!({ "instance": "demo", "scope": "bad\"scope" })).await.assert_error(bad_request, "invalid_scope");
        mint(json!({ "instance": "demo", "scope": "mcp:read", "ttl": 901 }))
            .await
            .assert_error(bad_request, "invalid_request");
        mint(json!({ "instance": "demo", "scope": "mcp:read", "ttl": 0 }))
            .await
            .assert_error(bad_request, "invalid_request");
        mint(json!({ "instance": "demo", "scope": "mcp:read", "sub": "a\nb" }))
            .await
            .assert_error(bad_request, "invalid_request");
        // A custom scope the instance's policy names is fine.
        assert_eq!(mint(json!({ "instance": "demo", "scope": "ops:deploy" })).await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn rotation_signs_with_the_prepublished_key_and_keeps_the_old_one() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let before = kids(&t.jwks().await);
        let (current, next) = (before[0].clone(), before[1].clone());
        let old_token = t.mint("demo", "mcp:read").await;

        let reply = t.admin(Method::POST, "/admin/v1/keys/rotate", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body["current"], next.as_str());
        assert_eq!(reply.body["previous"], current.as_str());
        assert_eq!(reply.body["retired"], serde_json::Value::Null);

        let after = t.jwks().await;
        let after_kids = kids(&after);
        assert_eq!(after_kids.len(), 3, "current, next and previous");
        assert_eq!(after_kids[0], next, "the former next key signs now");
        assert!(after_kids.contains(&current), "the former current key is still published");
        let (_, kid) = verify(&t.mint("demo", "mcp:read").await, &after).unwrap();
        assert_eq!(kid, next);
        let (_, kid) = verify(&old_token, &after).expect("tokens signed before the rotation still verify");
        assert_eq!(kid, current);

        // Retiring `current` now would break tokens it just signed.
        t.admin(Method::POST, "/admin/v1/keys/rotate", Some(json!({})))
            .await
            .assert_error(StatusCode::CONFLICT, "conflict");
        let forced = t.admin(Method::POST, "/admin/v1/keys/rotate", Some(json!({ "force": true }))).await;
        assert_eq!(forced.status, StatusCode::OK, "{forced:?}");
        assert_eq!(forced.body["retired"], current.as_str());
        let jwks = t.jwks().await;
        assert!(!kids(&jwks).contains(&current), "a retired key is unpublished");
        assert!(verify(&old_token, &jwks).is_err());
    })
    .await;
}

#[tokio::test]
async fn a_rotation_by_another_process_is_picked_up() {
    on_each_backend(|env| async move {
        let first = env.open().await;
        let second = env.open().await;
        first.create_instance(json!({ "id": "demo" })).await;
        let old = first.app.keys.current().signer().kid().to_owned();
        assert_eq!(second.app.keys.current().signer().kid(), old, "replicas share keys");

        let rotation = second.app.rotate_keys(&Actor::cli(), false).await.expect("rotates");
        assert_eq!(first.app.keys.current().signer().kid(), old, "not yet seen");
        let reloader = keys::reload::spawn(
            first.app.db.clone(),
            first.app.cipher.clone(),
            first.app.keys.clone(),
            Duration::from_millis(200),
        )
        .expect("stored keys are reloaded");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while first.app.keys.current().signer().kid() != rotation.current {
            assert!(tokio::time::Instant::now() < deadline, "the rotation was not picked up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reloader.abort();
        let (_, kid) = verify(&first.mint("demo", "mcp:read").await, &first.jwks().await).unwrap();
        assert_eq!(kid, rotation.current);
    })
    .await;
}

#[tokio::test]
async fn an_environment_key_is_the_only_key_and_is_not_rotated() {
    on_each_backend(|env| async move {
        let key = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        let t = env.open_with(&[("JWT_PRIVATE_KEY", &private), ("JWT_PUBLIC_KEY", &public)]).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let jwks = t.jwks().await;
        assert_eq!(kids(&jwks), vec![thumbprint(key.verifying_key())]);
        let (_, kid) = verify(&t.mint("demo", "mcp:read").await, &jwks).unwrap();
        assert_eq!(kid, thumbprint(key.verifying_key()));
        let refused = t.admin(Method::POST, "/admin/v1/keys/rotate", None).await;
        refused.assert_error(StatusCode::CONFLICT, "conflict");
        assert!(refused.body["error_description"].as_str().unwrap().contains("JWT_PRIVATE_KEY"));
        let stored = t.admin(Method::GET, "/admin/v1/keys", None).await;
        assert_eq!(stored.body["source"], "environment");
        assert_eq!(stored.body["keys"], json!([]), "an environment key is never stored");
    })
    .await;
}

#[tokio::test]
async fn stored_keys_need_the_master_key_that_sealed_them() {
    on_each_backend(|env| async move {
        drop(env.open().await);
        let other = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let config = env.config_with(&[("SEKISHO_MASTER_KEY", &other)]);
        let error = sekisho_authz::App::open(config, &Actor::system()).await.err().expect("refuses to start");
        let message = format!("{error:#}");
        assert!(message.contains("SEKISHO_MASTER_KEY"), "{message}");
    })
    .await;
}
