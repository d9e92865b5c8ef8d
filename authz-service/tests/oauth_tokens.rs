//! What happens to tokens after the first exchange: code replay, refresh
//! rotation and reuse, narrowing, client credentials, revocation,
//! introspection — and two replicas racing on one database.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use common::{on_each_backend, verify};
use oauth::*;
use reqwest::StatusCode;
use sekisho_authz::audit::Actor;
use sekisho_authz::clients::metadata::Registrar;
use sekisho_authz::clients::registration;
use sekisho_contract::claims::Audience;
use serde_json::{Value, json};

fn events(reply: Vec<sekisho_authz::audit::AuditRecord>) -> Vec<String> {
    reply.into_iter().map(|e| e.event).collect()
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_yielded() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        let pkce = pkce();
        let code = authorize_code(&server, &client.client_id, &pkce, "mcp:read").await;
        let first = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(first.status, StatusCode::OK, "{first:?}");
        let tokens = first.json();
        let access = tokens["access_token"].as_str().unwrap();
        let refresh_token = tokens["refresh_token"].as_str().unwrap();
        assert!(revoked_jtis(&server).await.is_empty());

        redeem(&server, &client, &code, &pkce.verifier).await.assert_error(400, "invalid_grant");

        // The refresh token of the first redemption stops working, and the
        // filter learns the access token's jti.
        refresh(&server, &client, refresh_token, &[]).await.assert_error(400, "invalid_grant");
        assert_eq!(revoked_jtis(&server).await, vec![jti_of(access)]);
        let policy = get(&server, "/internal/v1/filter-policy", None).await.json();
        assert!(policy["revoked"][0]["exp"].as_i64().unwrap() > 0);
        let introspected = introspect(&server, &client, access).await;
        assert_eq!(introspected["active"], false);
        let replays = sekisho_authz::audit::list(&t.app.db, Some("code.replayed"), 10).await.unwrap();
        assert_eq!(replays.len(), 1);
        assert_eq!(replays[0].outcome, "failure");
    })
    .await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    on_each_backend(|env| async move {
        let t = env.open_with(&[HEADLESS[0], HEADLESS[1], ("SEKISHO_REFRESH_REUSE_GRACE_SECS", "0")]).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_public(&server).await;
        let tokens = tokens_for(&server, &client, "mcp:read").await;
        let r1 = tokens["refresh_token"].as_str().unwrap().to_owned();

        let second = refresh(&server, &client, &r1, &[]).await;
        assert_eq!(second.status, StatusCode::OK, "{second:?}");
        assert_eq!(second.header("cache-control"), "no-store");
        let second = second.json();
        let r2 = second["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(r1, r2, "rotated");
        let (claims, _) = verify(second["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!((claims.sub.as_str(), claims.scope.as_str()), ("dev-user", "mcp:read"));

        // r1 again: a stolen token. The family goes, r2 with it, and the access
        // tokens issued with the family are published as revoked.
        refresh(&server, &client, &r1, &[]).await.assert_error(400, "invalid_grant");
        refresh(&server, &client, &r2, &[]).await.assert_error(400, "invalid_grant");
        let revoked = revoked_jtis(&server).await;
        for access in [tokens["access_token"].as_str().unwrap(), second["access_token"].as_str().unwrap()] {
            assert!(revoked.contains(&jti_of(access)), "{revoked:?}");
        }
        let reuse = sekisho_authz::audit::list(&t.app.db, Some("refresh.reused"), 10).await.unwrap();
        assert_eq!(reuse.len(), 1);
        assert!(reuse[0].reason.as_deref().unwrap().contains("family revoked"));
    })
    .await;
}

#[tokio::test]
async fn a_retry_within_the_grace_window_is_refused_without_revoking() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_public(&server).await;
        let tokens = tokens_for(&server, &client, "mcp:read").await;
        let r1 = tokens["refresh_token"].as_str().unwrap().to_owned();
        let second = refresh(&server, &client, &r1, &[]).await.json();
        refresh(&server, &client, &r1, &[]).await.assert_error(400, "invalid_grant");
        let r2 = second["refresh_token"].as_str().unwrap();
        let third = refresh(&server, &client, r2, &[]).await;
        assert_eq!(third.status, StatusCode::OK, "the family survives: {third:?}");
        assert!(revoked_jtis(&server).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_refresh_may_narrow_scope_and_resources_but_never_widen_them() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        t.create_instance(json!({ "id": "other" })).await;
        t.create_instance(json!({ "id": "third" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        // One authorization for two instances.
        let pkce = pkce();
        let mut params = code_request(&client.client_id, &pkce, "mcp:read mcp:write", "s");
        params.push(("resource", OTHER));
        let location = get(&server, &authorize_path(&params), None).await.location();
        let code = param(&location, "code").expect("code");
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
            ("redirect_uri", CALLBACK),
            ("client_id", client.client_id.as_str()),
        ];
        let secret = client.client_secret.clone().unwrap();
        form.push(("client_secret", &secret));
        let tokens = token(&server, &form).await.json();
        let jwks = t.jwks().await;
        let (claims, _) = verify(tokens["access_token"].as_str().unwrap(), &jwks).unwrap();
        assert_eq!(claims.aud, Audience::Many(vec![DEMO.into(), OTHER.into()]));
        let mut refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

        // Narrower: fine, and the family keeps its grant for the next refresh.
        for (extra, aud, scope) in [
            (vec![("scope", "mcp:read"), ("resource", OTHER)], Audience::One(OTHER.into()), "mcp:read"),
            (vec![], Audience::Many(vec![DEMO.into(), OTHER.into()]), "mcp:read mcp:write"),
            (vec![("resource", "http://127.0.0.1:8080/mcp/demo/")], Audience::One(DEMO.into()), "mcp:read mcp:write"),
        ] {
            let answer = refresh(&server, &client, &refresh_token, &extra).await;
            assert_eq!(answer.status, StatusCode::OK, "{extra:?}: {answer:?}");
            let body = answer.json();
            let (claims, _) = verify(body["access_token"].as_str().unwrap(), &jwks).unwrap();
            assert_eq!((claims.aud, claims.scope.as_str()), (aud, scope), "{extra:?}");
            refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        }
        // Wider: refused, and the token is not spent by the refusal.
        for (extra, code) in [
            (vec![("scope", "mcp:read mcp:admin")], "invalid_scope"),
            (vec![("scope", "mcp:read offline_access")], "invalid_scope"),
            (vec![("scope", "bad\"scope")], "invalid_scope"),
            (vec![("resource", "http://127.0.0.1:8080/mcp/third")], "invalid_target"),
            (vec![("resource", "http://127.0.0.1:8080/mcp/ghost")], "invalid_target"),
            (vec![("resource", DEMO), ("resource", "http://127.0.0.1:8080/mcp/third")], "invalid_target"),
        ] {
            refresh(&server, &client, &refresh_token, &extra).await.assert_error(400, code);
        }
        assert_eq!(refresh(&server, &client, &refresh_token, &[]).await.status, StatusCode::OK);
        // Another client cannot use it.
        let stranger = register_python_style(&server).await;
        refresh(&server, &stranger, &refresh_token, &[]).await.assert_error(400, "invalid_grant");
    })
    .await;
}

async fn operator_client(t: &common::TestApp, body: Value) -> Registered {
    let request = serde_json::from_value(body).unwrap();
    let info = registration::register(&t.app, request, Registrar::Operator, &Actor::cli()).await.unwrap();
    Registered {
        client_id: info.client_id.clone(),
        client_secret: info.client_secret.clone(),
        body: serde_json::to_value(&info).unwrap(),
    }
}

#[tokio::test]
async fn client_credentials_is_for_operator_clients_within_their_scope() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let machine = operator_client(
            &t,
            json!({ "client_name": "batch", "grant_types": ["client_credentials"], "scope": "mcp:read" }),
        )
        .await;
        let (id, secret) = (machine.client_id.as_str(), machine.client_secret.clone().unwrap());
        let cc = |extra: &'static [(&'static str, &'static str)]| client_credentials(&server, id, &secret, extra);
        // Resource omitted, one instance: that one. Scope omitted: the registered scope.
        let answer = cc(&[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let body = answer.json();
        assert!(body.get("refresh_token").is_none());
        let (claims, _) = verify(body["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.sub, id);
        assert_eq!(claims.client_id, id);
        assert_eq!(claims.scope, "mcp:read");
        assert_eq!(claims.aud, Audience::One(DEMO.into()));
        // JSON, with the secret in the body, as the seed's examples do.
        let json_answer = post_json(
            &server,
            "/oauth/token",
            &json!({ "grant_type": "client_credentials", "client_id": id, "client_secret": secret, "resource": DEMO }),
        )
        .await;
        assert_eq!(json_answer.status, StatusCode::OK, "{json_answer:?}");

        cc(&[("scope", "mcp:read mcp:write")]).await.assert_error(400, "invalid_scope");
        cc(&[("resource", "http://127.0.0.1:8080/mcp/ghost")]).await.assert_error(400, "invalid_target");
        // Two instances: the resource must be named.
        t.create_instance(json!({ "id": "other" })).await;
        cc(&[]).await.assert_error(400, "invalid_target");
        assert_eq!(cc(&[("resource", OTHER)]).await.status, StatusCode::OK);
        // An instance that takes API keys only is no target for a token.
        t.create_instance(json!({ "id": "keys", "auth_mode": "api_key" })).await;
        cc(&[("resource", "http://127.0.0.1:8080/mcp/keys")]).await.assert_error(400, "invalid_target");
        // Wrong secret.
        post_form(&server, "/oauth/token", &[("grant_type", "client_credentials")], Some((id, "nope")))
            .await
            .assert_error(401, "invalid_client");

        // Registered without a scope: the configured default, and no more.
        let plain = operator_client(&t, json!({ "grant_types": ["client_credentials"] })).await;
        let answer = post_form(
            &server,
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("resource", DEMO)],
            Some((&plain.client_id, plain.client_secret.as_deref().unwrap())),
        )
        .await;
        assert_eq!(answer.json()["scope"], "mcp:read mcp:write");
        post_form(
            &server,
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("resource", DEMO), ("scope", "mcp:admin")],
            Some((&plain.client_id, plain.client_secret.as_deref().unwrap())),
        )
        .await
        .assert_error(400, "invalid_scope");
    })
    .await;
}

async fn client_credentials(server: &Server, id: &str, secret: &str, extra: &[(&str, &str)]) -> Answer {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    post_form(server, "/oauth/token", &form, Some((id, secret))).await
}

async fn introspect(server: &Server, client: &Registered, token: &str) -> Value {
    let answer = post_form(
        server,
        "/oauth/introspect",
        &[("token", token)],
        Some((&client.client_id, client.client_secret.as_deref().unwrap())),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    answer.json()
}

#[tokio::test]
async fn revocation_and_introspection() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        let other = register_python_style(&server).await;
        let tokens = tokens_for(&server, &client, "mcp:read").await;
        let access = tokens["access_token"].as_str().unwrap();
        let refresh_token = tokens["refresh_token"].as_str().unwrap();

        let about_access = introspect(&server, &client, access).await;
        assert_eq!(about_access["active"], true);
        assert_eq!(about_access["client_id"], client.client_id);
        assert_eq!(about_access["sub"], "dev-user");
        assert_eq!(about_access["scope"], "mcp:read");
        assert_eq!(about_access["aud"], DEMO);
        assert_eq!(about_access["jti"], jti_of(access));
        let about_refresh = introspect(&server, &client, refresh_token).await;
        assert_eq!(about_refresh["active"], true);
        assert_eq!(about_refresh["token_type"], "refresh_token");
        // Refresh tokens are their client's business only; garbage is inactive.
        assert_eq!(introspect(&server, &other, refresh_token).await, json!({ "active": false }));
        assert_eq!(introspect(&server, &client, "garbage").await, json!({ "active": false }));
        let forged = format!("{}x", &access[..access.len() - 1]);
        assert_eq!(introspect(&server, &client, &forged).await["active"], false);
        // Public clients cannot introspect.
        let public = register_public(&server).await;
        token_endpoint_style(&server, "/oauth/introspect", &[("token", access), ("client_id", &public.client_id)])
            .await
            .assert_error(401, "invalid_client");

        // Another client's revocation does nothing (and says nothing).
        let by_other = post_form(
            &server,
            "/oauth/revoke",
            &[("token", refresh_token)],
            Some((&other.client_id, other.client_secret.as_deref().unwrap())),
        )
        .await;
        assert_eq!(by_other.status, StatusCode::OK);
        assert_eq!(introspect(&server, &client, refresh_token).await["active"], true);

        // The owner revokes the refresh token: its family and its access token go.
        let revoked = post_form(
            &server,
            "/oauth/revoke",
            &[("token", refresh_token), ("token_type_hint", "refresh_token")],
            Some((&client.client_id, client.client_secret.as_deref().unwrap())),
        )
        .await;
        assert_eq!(revoked.status, StatusCode::OK, "{revoked:?}");
        refresh(&server, &client, refresh_token, &[]).await.assert_error(400, "invalid_grant");
        assert_eq!(introspect(&server, &client, access).await["active"], false);
        assert!(revoked_jtis(&server).await.contains(&jti_of(access)));

        // An access token alone, by a public client.
        let public_tokens = tokens_for(&server, &public, "mcp:read").await;
        let public_access = public_tokens["access_token"].as_str().unwrap();
        let answer = token_endpoint_style(
            &server,
            "/oauth/revoke",
            &[("token", public_access), ("client_id", &public.client_id)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert!(revoked_jtis(&server).await.contains(&jti_of(public_access)));
        // Unknown tokens: 200. Unauthenticated: 401. No token: 400.
        let unknown = post_form(
            &server,
            "/oauth/revoke",
            &[("token", "never-issued")],
            Some((&client.client_id, client.client_secret.as_deref().unwrap())),
        )
        .await;
        assert_eq!(unknown.status, StatusCode::OK);
        post_form(&server, "/oauth/revoke", &[("token", "x")], None).await.assert_error(401, "invalid_client");
        post_form(&server, "/oauth/revoke", &[], Some((&client.client_id, client.client_secret.as_deref().unwrap())))
            .await
            .assert_error(400, "invalid_request");
        let audited = events(sekisho_authz::audit::list(&t.app.db, Some("token.revoked"), 10).await.unwrap());
        assert_eq!(audited.len(), 2);
    })
    .await;
}

async fn token_endpoint_style(server: &Server, path: &str, form: &[(&str, &str)]) -> Answer {
    post_form(server, path, form, None).await
}

#[tokio::test]
async fn two_replicas_redeem_a_code_exactly_once() {
    on_each_backend(|env| async move {
        let a = env.open_with(&HEADLESS).await;
        let b = env.open_with(&HEADLESS).await;
        a.create_instance(json!({ "id": "demo" })).await;
        let (sa, sb) = (serve(&a.app).await, serve(&b.app).await);
        let client = register_public(&sa).await;
        for round in 0..5 {
            let pkce = pkce();
            let code = authorize_code(&sb, &client.client_id, &pkce, "mcp:read").await;
            let (x, y) =
                tokio::join!(redeem(&sa, &client, &code, &pkce.verifier), redeem(&sb, &client, &code, &pkce.verifier));
            let ok = [&x, &y].iter().filter(|r| r.status == StatusCode::OK).count();
            assert_eq!(ok, 1, "round {round}: {x:?} {y:?}");
            let loser = if x.status == StatusCode::OK { &y } else { &x };
            loser.assert_error(400, "invalid_grant");
        }
    })
    .await;
}

#[tokio::test]
async fn two_replicas_rotate_a_refresh_token_into_exactly_one_successor() {
    on_each_backend(|env| async move {
        let a = env.open_with(&HEADLESS).await;
        let b = env.open_with(&HEADLESS).await;
        a.create_instance(json!({ "id": "demo" })).await;
        let (sa, sb) = (serve(&a.app).await, serve(&b.app).await);
        let client = register_public(&sa).await;
        let tokens = tokens_for(&sa, &client, "mcp:read").await;
        let r1 = tokens["refresh_token"].as_str().unwrap();
        let (x, y) = tokio::join!(refresh(&sa, &client, r1, &[]), refresh(&sb, &client, r1, &[]));
        let winners: Vec<&Answer> = [&x, &y].into_iter().filter(|r| r.status == StatusCode::OK).collect();
        assert_eq!(winners.len(), 1, "{x:?} {y:?}");
        let loser = if x.status == StatusCode::OK { &y } else { &x };
        loser.assert_error(400, "invalid_grant");
        let members: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens").fetch_one(a.app.db.pool()).await.unwrap();
        assert_eq!(members, 2, "the first token and exactly one successor");
        // The race was a retry within the grace window: the successor works.
        let successor = winners[0].json()["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(refresh(&sb, &client, &successor, &[]).await.status, StatusCode::OK);
    })
    .await;
}
