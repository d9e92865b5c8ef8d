//! User login federated to a REAL OpenID provider (issue 4, SPEC U): the npm
//! package `oidc-provider` (OpenID-certified) on loopback, a browser at the
//! HTTP level (`common/oidc.rs`). The redirect carries our own state, nonce
//! and PKCE; a tampered or replayed state is a 400 page; the provider's
//! `error=` reaches the client as `access_denied`; the user row is created,
//! then updated; the breaker opens when the provider stops and closes when it
//! is back. Forged ID tokens: `oidc_id_token.rs`.

mod common;
#[path = "common/oauth.rs"]
mod oauth;
#[path = "common/oidc.rs"]
mod oidc;

use std::time::{Duration, Instant};

use common::{ISSUER, on_each_backend, verify};
use oauth::*;
use oidc::*;
use reqwest::StatusCode;
use sekisho_authz::audit::Actor;
use sekisho_authz::clients::metadata::Registrar;
use sekisho_authz::clients::registration;
use serde_json::json;
use url::Url;

/// The value of one series in `/metrics` (0 when it has not appeared yet).
async fn metric(server: &Server, series: &str) -> f64 {
    let text = get(server, "/metrics", None).await.text;
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |value| value.parse().expect("a number"))
}

const BREAKER_STATE: &str = r#"sekisho_authz_identity_provider_breaker_state{provider="oidc"}"#;

fn breaker_moves(from: &str, to: &str) -> String {
    format!(r#"sekisho_authz_identity_provider_breaker_transitions_total{{provider="oidc",from="{from}",to="{to}"}}"#)
}

#[tokio::test]
async fn login_through_a_real_oidc_provider_and_its_refusals() {
    on_each_backend(|env| async move {
        let keys = env.dir.path().join("provider-keys.json");
        let provider = Provider::start(free_port(), keys).await;
        let vars = oidc_env(&provider, "5", "30");
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = env.open_with(&vars).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;

        // The redirect to the provider carries OUR state, nonce and PKCE S256.
        let mut browser = Browser::new(&server);
        let pkce = pkce();
        let hop = authorize(&mut browser, &client, &pkce, "client-state").await;
        let to_provider = hop.location.clone().unwrap();
        assert_eq!(query(&to_provider, "client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(query(&to_provider, "code_challenge_method").as_deref(), Some("S256"));
        assert_eq!(query(&to_provider, "redirect_uri"), Some(format!("{ISSUER}/oauth/callback")));
        let upstream_state = query(&to_provider, "state").unwrap();
        assert_ne!(upstream_state, "client-state");
        assert!(query(&to_provider, "nonce").is_some_and(|n| n.len() >= 43));
        assert!(query(&to_provider, "code_challenge").is_some_and(|c| c != pkce.challenge));

        // Tampered state: a page, no redirect, nothing consumed.
        let callback = browser.log_in_at_provider(&to_provider, false).await;
        let mut tampered = callback.clone();
        let pairs: Vec<(String, String)> = callback
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "state" { format!("{v}x") } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        tampered.query_pairs_mut().clear().extend_pairs(pairs);
        let hop = browser.get(tampered.as_str()).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST, "{}", hop.text);
        assert!(hop.location.is_none());
        assert!(hop.text.contains("does not belong to a login in progress"), "{}", hop.text);
        let hop = browser.get(&format!("{ISSUER}/oauth/callback?code=abc")).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST);

        // The real answer still completes: code, then tokens for alice.
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::FOUND, "{}", hop.text);
        let hop = browser.get(&hop.location.unwrap()).await;
        let at_client = Url::parse(&hop.location.unwrap()).unwrap();
        assert!(at_client.as_str().starts_with(CALLBACK), "{at_client}");
        assert_eq!(param(&at_client, "state").as_deref(), Some("client-state"));
        assert_eq!(param(&at_client, "iss").as_deref(), Some(ISSUER));
        let code = param(&at_client, "code").expect("a code");
        let answer = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let tokens = answer.json();
        let (claims, _) = verify(tokens["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.sub, "alice");

        // Replaying the callback: the state is single use.
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::BAD_REQUEST);

        // The user record exists; its PII is sealed.
        let row: (String, String, Option<String>) =
            sqlx::query_as("SELECT subject, issuer, email_sealed FROM users WHERE subject = 'alice'")
                .fetch_one(t.app.db.pool())
                .await
                .unwrap();
        assert_eq!(row.1, provider.issuer());
        let sealed = row.2.expect("email stored");
        assert!(!sealed.contains("alice@example.com"));
        let opened = t.app.cipher.open(&sealed, "users.email:alice").unwrap();
        assert!(String::from_utf8(opened).unwrap().contains("alice@example.com"));

        // A second login updates the same user.
        let pkce2 = oauth::pkce();
        let at_client = full_login(&mut browser, &client, &pkce2, &provider).await;
        assert!(param(&at_client, "code").is_some(), "{at_client}");
        let users: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(t.app.db.pool()).await.unwrap();
        assert_eq!(users.0, 1);

        // The provider answers error=access_denied (the user cancels): the
        // client hears access_denied, with its own state.
        // (A new browser: this one has a session at the provider already.)
        let mut browser = Browser::new(&server);
        let hop = authorize(&mut browser, &client, &oauth::pkce(), "client-state").await;
        let callback = browser.log_in_at_provider(&hop.location.unwrap(), true).await;
        assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
        let hop = browser.get(callback.as_str()).await;
        assert_eq!(hop.status, StatusCode::FOUND);
        let at_client = Url::parse(&hop.location.unwrap()).unwrap();
        assert!(at_client.as_str().starts_with(CALLBACK));
        assert_eq!(param(&at_client, "error").as_deref(), Some("access_denied"));
        assert_eq!(param(&at_client, "state").as_deref(), Some("client-state"));

        let succeeded = events(&t, "login.succeeded").await;
        assert_eq!(succeeded.len(), 2);
        assert_eq!(succeeded[0].subject.as_deref(), Some("alice"));
        assert_eq!(succeeded[0].details["provider"], "oidc");
        let failed = events(&t, "login.failed").await;
        let reasons: Vec<&str> = failed.iter().filter_map(|e| e.reason.as_deref()).collect();
        assert!(reasons.iter().any(|r| r.contains("unknown, expired or reused state")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("error=access_denied")), "{reasons:?}");
        // No code, token or secret in the audit log.
        let all = serde_json::to_string(&sekisho_authz::audit::list(&t.app.db, None, 200).await.unwrap()).unwrap();
        for secret in [code.as_str(), CLIENT_SECRET, upstream_state.as_str(), tokens["access_token"].as_str().unwrap()]
        {
            assert!(!all.contains(secret), "audit log leaks a secret");
        }

        let h = health(&server).await;
        assert_eq!(h["status"], "ok");
        assert_eq!(h["provider"]["breaker"], "closed");
        assert_eq!(h["provider"]["jwks_cached"], true);
    })
    .await;
}

#[tokio::test]
async fn the_breaker_opens_when_the_provider_stops_and_closes_when_it_is_back() {
    on_each_backend(|env| async move {
        let keys = env.dir.path().join("provider-keys.json");
        let mut provider = Provider::start(free_port(), keys).await;
        let vars = oidc_env(&provider, "3", "2");
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let t = env.open_with(&vars).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        let machine = {
            let request = serde_json::from_value(
                json!({ "client_name": "batch", "grant_types": ["client_credentials"], "scope": "mcp:read" }),
            )
            .unwrap();
            registration::register(&t.app, request, Registrar::Operator, &Actor::cli()).await.unwrap()
        };
        let client_credentials = || {
            post_form(
                &server,
                "/oauth/token",
                &[("grant_type", "client_credentials")],
                Some((&machine.client_id, machine.client_secret.as_deref().unwrap())),
            )
        };

        // A login while the provider is up: tokens with a refresh token.
        let mut browser = Browser::new(&server);
        let pkce = pkce();
        let at_client = full_login(&mut browser, &client, &pkce, &provider).await;
        let code = param(&at_client, "code").expect("code");
        let tokens = redeem(&server, &client, &code, &pkce.verifier).await.json();
        let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

        // Provider stopped: each login start fails its discovery fetch; the
        // last good document is still used, until the 3rd failure opens.
        provider.stop().await;
        for attempt in 1..=3 {
            let hop = authorize(&mut browser, &client, &oauth::pkce(), "s").await;
            assert_eq!(hop.status, StatusCode::FOUND, "attempt {attempt}");
            let location = hop.location.unwrap();
            if attempt < 3 {
                assert!(location.starts_with(&provider.issuer()), "degraded, last good discovery: {location}");
            }
        }
        assert_eq!(events(&t, "breaker.opened").await.len(), 1);
        let h = health(&server).await;
        assert_eq!((h["status"].as_str(), h["provider"]["breaker"].as_str()), (Some("degraded"), Some("open")));
        assert_eq!(metric(&server, BREAKER_STATE).await, 2.0, "the gauge reads open");
        assert_eq!(metric(&server, &breaker_moves("closed", "open")).await, 1.0);

        // Open: a new login fails fast, back at the client with
        // temporarily_unavailable and Retry-After.
        let started = Instant::now();
        let hop = authorize(&mut browser, &client, &oauth::pkce(), "s").await;
        let unavailable = hop.location.unwrap();
        assert!(unavailable.starts_with(&format!("{ISSUER}/oauth/login/unavailable?request=")), "{unavailable}");
        let hop = browser.get(&unavailable).await;
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
        assert_eq!(hop.status, StatusCode::FOUND);
        let at_client = Url::parse(&hop.location.unwrap()).unwrap();
        assert!(at_client.as_str().starts_with(CALLBACK));
        assert_eq!(param(&at_client, "error").as_deref(), Some("temporarily_unavailable"));
        assert_eq!(param(&at_client, "state").as_deref(), Some("s"));
        let retry: u64 = hop.retry_after.expect("Retry-After").parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        // Without a request to answer: a 503 page with Retry-After.
        let hop = browser.get(&format!("{ISSUER}/oauth/login/unavailable?request=gone")).await;
        assert_eq!(hop.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(hop.retry_after.is_some());

        // What does not need the provider keeps working.
        let answer = refresh(&server, &client, &refresh_token, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        refresh_token = answer.json()["refresh_token"].as_str().unwrap().to_owned();
        let answer = client_credentials().await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");

        // Provider back, cool-down over: half-open, the trial succeeds, closed.
        provider.restart().await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let pkce = oauth::pkce();
        let at_client = full_login(&mut browser, &client, &pkce, &provider).await;
        let code = param(&at_client, "code").expect("login works again");
        assert_eq!(redeem(&server, &client, &code, &pkce.verifier).await.status, StatusCode::OK);
        assert_eq!(refresh(&server, &client, &refresh_token, &[]).await.status, StatusCode::OK);

        let transitions: Vec<String> = sekisho_authz::audit::list(&t.app.db, None, 500)
            .await
            .unwrap()
            .into_iter()
            .rev()
            .filter(|e| e.event.starts_with("breaker."))
            .map(|e| e.event)
            .collect();
        assert_eq!(transitions, ["breaker.opened", "breaker.half_open", "breaker.closed"]);
        let opened = &events(&t, "breaker.opened").await[0];
        assert_eq!(opened.details["consecutive_failures"], 3);
        assert_eq!(opened.actor, "system");
        let h = health(&server).await;
        assert_eq!((h["status"].as_str(), h["provider"]["breaker"].as_str()), (Some("ok"), Some("closed")));
        assert_eq!(metric(&server, BREAKER_STATE).await, 0.0, "the gauge reads closed");
        for (from, to) in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")] {
            assert_eq!(metric(&server, &breaker_moves(from, to)).await, 1.0, "{from} -> {to}");
        }
        let unavailable = events(&t, "login.failed").await;
        assert!(unavailable.iter().any(|e| e.reason.as_deref() == Some("identity provider unavailable")));
    })
    .await;
}
