//! Forged ID tokens from a REAL provider (issue 4's negative tests, SPEC U2):
//! `oidc-provider` on loopback, told through its test-only control endpoint
//! to replace one claim of the next ID token it issues and to sign it again
//! with its own key (see `tests/providers/oidc/provider.mjs` for why that is
//! the honest way to get such tokens). So the signature verifies against the
//! provider's JWKS and only the claim is wrong: a wrong `nonce`, another
//! issuer, another audience, an expired token.
//!
//! Each one: the callback sends the browser back to the MCP client with
//! `access_denied` (RFC 6749 §4.1.2.1: the authorization server denies the
//! request; the client's state and our `iss` with it), never a 5xx; no user
//! row is created or changed; `login.failed` is audited with the reason; the
//! breaker does not count it (the provider is up). And a good ID token whose
//! `sub` already belongs to a user of another issuer is refused the same way:
//! that user is not taken over.

mod common;
#[path = "common/oauth.rs"]
mod oauth;
#[path = "common/oidc.rs"]
mod oidc;

use common::{ISSUER, on_each_backend};
use oauth::*;
use oidc::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

type UserRow = (String, String, String, Option<String>, Option<String>, i64, i64);

async fn users(t: &common::TestApp) -> Vec<UserRow> {
    sqlx::query_as(
        "SELECT subject, issuer, upstream_subject, email_sealed, profile_sealed, updated_at, last_login_at
         FROM users ORDER BY subject",
    )
    .fetch_all(t.app.db.pool())
    .await
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_issuer_audience_or_expiry_are_refused() {
    on_each_backend(|env| async move {
        let keys = env.dir.path().join("provider-keys.json");
        let provider = Provider::start_misbehaving(free_port(), keys).await;
        // A low threshold: if a forged token counted as a provider failure,
        // the breaker would open during this test.
        let vars = oidc_env(&provider, "2", "30");
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = env.open_with(&vars).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;

        // A good login first: alice exists.
        let mut browser = Browser::new(&server);
        let at_client = full_login(&mut browser, &client, &pkce(), &provider).await;
        assert!(param(&at_client, "code").is_some(), "{at_client}");
        let before = users(&t).await;
        assert_eq!(before.len(), 1);

        let cases: [(&str, Value, &str); 4] = [
            ("nonce", json!({ "nonce": "a-nonce-from-another-login" }), "nonce does not match"),
            ("iss", json!({ "iss": "http://127.0.0.1:9/another-tenant" }), "issued by another issuer"),
            ("aud", json!({ "aud": "another-client" }), "for another audience"),
            ("exp", json!({ "exp": now() - 120, "iat": now() - 180 }), "has expired"),
        ];
        for (claim, forged, reason) in cases {
            provider.tamper_next_id_token(forged).await;
            let callback = to_callback(&mut browser, &client, &pkce(), &provider).await;
            let hop = browser.get(callback.as_str()).await;
            assert_eq!(hop.status, StatusCode::FOUND, "{claim}: {}", hop.text);
            let at_client = Url::parse(&hop.location.unwrap()).unwrap();
            assert!(at_client.as_str().starts_with(CALLBACK), "{claim}: back at the client, {at_client}");
            assert_eq!(param(&at_client, "error").as_deref(), Some("access_denied"), "{claim}");
            assert_eq!(param(&at_client, "state").as_deref(), Some("client-state"), "{claim}");
            assert_eq!(param(&at_client, "iss").as_deref(), Some(ISSUER), "{claim}");
            assert_eq!(param(&at_client, "code"), None, "{claim}");
            let description = param(&at_client, "error_description").unwrap_or_default();
            assert!(description.contains("could not be verified"), "{claim}: {description}");

            assert_eq!(users(&t).await, before, "{claim}: the user row was created or changed");
            let failed = events(&t, "login.failed").await;
            let newest = failed.first().expect("login.failed");
            assert_eq!(newest.outcome, "failure");
            assert!(newest.reason.as_deref().is_some_and(|r| r.contains(reason)), "{claim}: {:?}", newest.reason);
            assert_eq!(newest.client_id.as_deref(), Some(client.client_id.as_str()), "{claim}");
            // The request is spent: the continue URL does not log anyone in.
            assert_eq!(events(&t, "login.succeeded").await.len(), 1, "{claim}");
        }
        assert_eq!(events(&t, "login.failed").await.len(), 4);
        let h = health(&server).await;
        assert_eq!(h["provider"]["breaker"], "closed", "forged tokens are not provider failures: {h}");

        // The misbehaviour was one-shot: the next login is good again, and
        // updates the row (so the comparisons above could have failed).
        let at_client = full_login(&mut browser, &client, &pkce(), &provider).await;
        assert!(param(&at_client, "code").is_some(), "{at_client}");
        let after = users(&t).await;
        assert_eq!(after.len(), 1);
        assert_ne!(after[0].3, before[0].3, "a good login re-seals the email");
        assert_eq!((after[0].1.as_str(), after[0].2.as_str()), (provider.issuer().as_str(), "alice"));
    })
    .await;
}

#[tokio::test]
async fn a_subject_bound_to_a_user_of_another_issuer_is_not_taken_over() {
    on_each_backend(|env| async move {
        let keys = env.dir.path().join("provider-keys.json");
        let provider = Provider::start(free_port(), keys).await;
        let vars = oidc_env(&provider, "5", "30");
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = env.open_with(&vars).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        // Someone else's alice, from the provider this deployment used before.
        sqlx::query(
            "INSERT INTO users (subject, issuer, upstream_subject, email_sealed, profile_sealed, created_at, updated_at, last_login_at)
             VALUES ('alice', 'https://previous-idp.example/', 'alice', NULL, NULL, 1, 1, 1)",
        )
        .execute(t.app.db.pool())
        .await
        .unwrap();
        let before = users(&t).await;

        let mut browser = Browser::new(&server);
        let callback = to_callback(&mut browser, &client, &pkce(), &provider).await;
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::FOUND, "{}", hop.text);
        let at_client = Url::parse(&hop.location.unwrap()).unwrap();
        assert_eq!(param(&at_client, "error").as_deref(), Some("access_denied"), "{at_client}");
        assert_eq!(param(&at_client, "code"), None);
        assert_eq!(users(&t).await, before, "the other issuer's user was taken over");
        let failed = events(&t, "login.failed").await;
        assert!(
            failed[0].reason.as_deref().is_some_and(|r| r.contains("belongs to a user of another issuer")),
            "{:?}",
            failed[0].reason
        );
        assert!(events(&t, "login.succeeded").await.is_empty());
    })
    .await;
}
