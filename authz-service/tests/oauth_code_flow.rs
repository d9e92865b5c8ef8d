//! The authorization code flow as real MCP clients run it: registration,
//! authorization with PKCE and a resource, consent, the code, the token — and
//! every way it must refuse. Driven over HTTP, redirects not followed.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use common::{ISSUER, on_each_backend, verify};
use oauth::*;
use reqwest::StatusCode;
use sekisho_contract::claims::Audience;
use serde_json::json;

#[tokio::test]
async fn a_python_style_client_gets_tokens_through_dev_login_and_auto_consent() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo", "display_name": "Demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        assert!(client.client_secret.is_some());
        assert_eq!(client.body["client_secret_expires_at"], 0);

        let pkce = pkce();
        let answer =
            get(&server, &authorize_path(&code_request(&client.client_id, &pkce, "mcp:read mcp:write", "st8")), None)
                .await;
        // One GET ends at the client, with code, state and iss (RFC 9207).
        assert_eq!(answer.status, StatusCode::FOUND, "{answer:?}");
        let location = answer.location();
        assert!(location.as_str().starts_with(CALLBACK), "{location}");
        assert_eq!(param(&location, "state").as_deref(), Some("st8"));
        assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
        let code = param(&location, "code").expect("code");

        let answer = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.header("cache-control"), "no-store");
        assert_eq!(answer.header("pragma"), "no-cache");
        let tokens = answer.json();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        assert_eq!(tokens["scope"], "mcp:read mcp:write");
        assert!(tokens["refresh_token"].is_string(), "it registered refresh_token");

        let (claims, _) = verify(tokens["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, Audience::One(DEMO.into()));
        assert_eq!(claims.sub, "dev-user");
        assert_eq!(claims.client_id, client.client_id);
        assert_eq!(claims.scope, "mcp:read mcp:write");

        let events: Vec<String> =
            sekisho_authz::audit::list(&t.app.db, None, 50).await.unwrap().into_iter().map(|e| e.event).collect();
        for expected in ["client.registered", "login.succeeded", "code.issued", "code.redeemed", "token.issued"] {
            assert!(events.iter().any(|e| e == expected), "{expected} in {events:?}");
        }
        // No secret, code or token in any audit row.
        let all = serde_json::to_string(&sekisho_authz::audit::list(&t.app.db, None, 50).await.unwrap()).unwrap();
        for secret in [
            client.client_secret.as_deref().unwrap(),
            code.as_str(),
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
        ] {
            assert!(!all.contains(secret));
        }
    })
    .await;
}

#[tokio::test]
async fn a_typescript_style_public_client_without_state_and_with_json_token_requests() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        // The TS SDK's minimal registration body.
        let client =
            register(&server, json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" })).await;
        assert!(client.client_secret.is_none());
        assert!(client.body.get("client_secret_expires_at").is_none());

        let pkce = pkce();
        // No state, no scope, and a resource with a trailing slash.
        let path = authorize_path(&[
            ("response_type", "code"),
            ("client_id", &client.client_id),
            ("redirect_uri", CALLBACK),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("resource", "http://127.0.0.1:8080/mcp/demo/"),
        ]);
        let answer = get(&server, &path, None).await;
        let location = answer.location();
        assert_eq!(param(&location, "state"), None);
        assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
        let code = param(&location, "code").expect("code");

        let answer = post_json(
            &server,
            "/oauth/token",
            &json!({
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": pkce.verifier,
                "redirect_uri": CALLBACK,
                "client_id": client.client_id,
            }),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        let tokens = answer.json();
        // RFC 6749 §3.3: no scope asked, the default granted.
        assert_eq!(tokens["scope"], "mcp:read mcp:write");
        // Registered without refresh_token and no offline_access: no refresh token.
        assert!(tokens.get("refresh_token").is_none());
        let (claims, _) = verify(tokens["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.aud, Audience::One(DEMO.into()), "the canonical form");
    })
    .await;
}

#[tokio::test]
async fn offline_access_yields_a_refresh_token_and_stays_out_of_access_tokens() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client =
            register(&server, json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" })).await;
        let tokens = tokens_for(&server, &client, "mcp:read offline_access").await;
        assert_eq!(tokens["scope"], "mcp:read offline_access");
        let refresh_token = tokens["refresh_token"].as_str().expect("refresh token");
        let (claims, _) = verify(tokens["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.scope, "mcp:read");

        let refreshed = refresh(&server, &client, refresh_token, &[]).await;
        assert_eq!(refreshed.status, StatusCode::OK, "{refreshed:?}");
        assert_eq!(refreshed.json()["scope"], "mcp:read offline_access");
    })
    .await;
}

#[tokio::test]
async fn the_consent_page_asks_once_and_is_remembered() {
    on_each_backend(|env| async move {
        let t = env.open_with(&[("SEKISHO_DEV_LOGIN", "1")]).await;
        t.create_instance(json!({ "id": "demo", "display_name": "Demo <server>" })).await;
        let server = serve(&t.app).await;
        let client = register(
            &server,
            json!({
                "redirect_uris": [CALLBACK],
                "token_endpoint_auth_method": "none",
                "client_name": "<script>alert(1)</script>",
            }),
        )
        .await;
        let pkce = pkce();
        let path = authorize_path(&code_request(&client.client_id, &pkce, "mcp:read", "s1"));
        let page = get(&server, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        assert!(page.header("content-type").starts_with("text/html"));
        let csp = page.header("content-security-policy");
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("form-action 'self' http://127.0.0.1:33418"), "{csp}");
        assert_eq!(page.header("x-frame-options"), "DENY");
        assert_eq!(page.header("referrer-policy"), "no-referrer");
        assert!(page.headers.get("strict-transport-security").is_none(), "http issuer");
        // Names the client (escaped), the redirect host, the instance and the scope.
        assert!(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.text.contains("<script>"));
        assert!(page.text.contains("127.0.0.1:33418"));
        assert!(page.text.contains("Demo &lt;server&gt;") && page.text.contains(DEMO));
        assert!(page.text.contains("mcp:read"));

        let cookie = page.header("set-cookie").split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("sekisho_browser="));
        assert!(page.header("set-cookie").contains("HttpOnly"));
        let request_id = hidden(&page.text, "request");
        let csrf = hidden(&page.text, "csrf");

        // Another browser (no cookie), or a forged form: refused, not redirected.
        post_consent(&server, None, &request_id, &csrf, "approve").await.assert_error_page("invalid_request");
        post_consent(&server, Some(&cookie), &request_id, &"x".repeat(43), "approve")
            .await
            .assert_error_page("invalid_request");

        let approved = post_consent(&server, Some(&cookie), &request_id, &csrf, "approve").await;
        assert_eq!(approved.status, StatusCode::SEE_OTHER, "{approved:?}");
        let location = approved.location();
        assert_eq!(param(&location, "state").as_deref(), Some("s1"));
        assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
        let code = param(&location, "code").expect("code");
        let tokens = redeem(&server, &client, &code, &pkce.verifier).await;
        assert_eq!(tokens.status, StatusCode::OK, "{tokens:?}");
        // Approving twice does not issue a second code.
        post_consent(&server, Some(&cookie), &request_id, &csrf, "approve").await.assert_error_page("invalid_request");

        // The second login is not asked again.
        let again =
            get(&server, &authorize_path(&code_request(&client.client_id, &pkce, "mcp:read", "s2")), Some(&cookie))
                .await;
        assert_eq!(again.status, StatusCode::FOUND, "{again:?}");
        assert!(param(&again.location(), "code").is_some());
        // Unless the client asks for the question (prompt=consent).
        let mut prompted = code_request(&client.client_id, &pkce, "mcp:read", "s2");
        prompted.push(("prompt", "consent"));
        let asked = get(&server, &authorize_path(&prompted), Some(&cookie)).await;
        assert_eq!(asked.status, StatusCode::OK, "{asked:?}");
        // A wider scope is asked again; this time the user says no.
        let wider = get(
            &server,
            &authorize_path(&code_request(&client.client_id, &pkce, "mcp:read mcp:write", "s3")),
            Some(&cookie),
        )
        .await;
        assert_eq!(wider.status, StatusCode::OK, "{wider:?}");
        let denied =
            post_consent(&server, Some(&cookie), &hidden(&wider.text, "request"), &hidden(&wider.text, "csrf"), "deny")
                .await;
        assert_eq!(denied.status, StatusCode::SEE_OTHER, "{denied:?}");
        let location = denied.location();
        assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
        assert_eq!(param(&location, "state").as_deref(), Some("s3"));
        assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
        let events: Vec<String> =
            sekisho_authz::audit::list(&t.app.db, None, 100).await.unwrap().into_iter().map(|e| e.event).collect();
        assert!(events.iter().any(|e| e == "consent.granted"));
        assert!(events.iter().any(|e| e == "consent.denied"));
    })
    .await;
}

async fn post_consent(server: &Server, cookie: Option<&str>, request_id: &str, csrf: &str, decision: &str) -> Answer {
    let mut request = http().post(format!("{}/oauth/authorize/consent", server.base)).form(&[
        ("request", request_id),
        ("csrf", csrf),
        ("decision", decision),
    ]);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    Answer::of(request.send().await.expect("request")).await
}

/// A parameter to set (`Some`) or remove (`None`) in an authorization request.
type Change = (&'static str, Option<&'static str>);

/// The value of a hidden form field.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("field") + marker.len();
    let end = start + html[start..].find('"').expect("end of value");
    html[start..end].to_owned()
}

#[tokio::test]
async fn authorization_errors_go_to_the_client_only_once_its_redirect_uri_is_known() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        t.create_instance(json!({ "id": "other" })).await;
        let server = serve(&t.app).await;
        let client = register_public(&server).await;
        let pkce = pkce();
        let base = code_request(&client.client_id, &pkce, "mcp:read", "s");
        let with = |changes: &[Change]| {
            let mut params: Vec<(&str, &str)> = base.clone();
            for (name, value) in changes {
                params.retain(|(n, _)| n != name);
                if let Some(v) = value {
                    params.push((name, v));
                }
            }
            authorize_path(&params)
        };

        // Unknown client, unregistered redirect URI: an error page, no redirect.
        get(&server, &with(&[("client_id", Some("nope"))]), None).await.assert_error_page("invalid_client");
        for uri in [
            "http://127.0.0.1:33418/elsewhere",
            "https://attacker.example/callback",
            "http://127.0.0.1:33418/callback#x",
        ] {
            get(&server, &with(&[("redirect_uri", Some(uri))]), None).await.assert_error_page("invalid_request");
        }
        get(&server, &with(&[("client_id", None)]), None).await.assert_error_page("invalid_request");

        // Everything else is redirected to the client with state and iss.
        let cases: &[(&[Change], &str)] = &[
            (&[("code_challenge", None), ("code_challenge_method", None)], "invalid_request"),
            (&[("code_challenge_method", Some("plain"))], "invalid_request"),
            (&[("code_challenge_method", None)], "invalid_request"),
            (&[("code_challenge", Some("tooshort"))], "invalid_request"),
            (&[("response_type", Some("token"))], "unsupported_response_type"),
            (&[("response_type", None)], "invalid_request"),
            (&[("resource", Some("http://127.0.0.1:8080/mcp/unknown"))], "invalid_target"),
            (&[("resource", Some("https://elsewhere.example/mcp/demo"))], "invalid_target"),
            (&[("resource", None)], "invalid_target"),
            (&[("scope", Some("mcp:read nonsense:scope"))], "invalid_scope"),
            (&[("scope", Some("offline_access"))], "invalid_scope"),
        ];
        for (changes, code) in cases {
            let answer = get(&server, &with(changes), None).await;
            assert_eq!(answer.status, StatusCode::FOUND, "{changes:?}: {answer:?}");
            let location = answer.location();
            assert!(location.as_str().starts_with(CALLBACK), "{location}");
            assert_eq!(param(&location, "error").as_deref(), Some(*code), "{changes:?}");
            assert_eq!(param(&location, "state").as_deref(), Some("s"));
            assert_eq!(param(&location, "iss").as_deref(), Some(ISSUER));
            assert!(param(&location, "code").is_none());
        }
    })
    .await;
}

#[tokio::test]
async fn without_a_login_method_the_client_is_told_to_retry_later() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_public(&server).await;
        let pkce = pkce();
        let answer =
            get(&server, &authorize_path(&code_request(&client.client_id, &pkce, "mcp:read", "s")), None).await;
        let location = answer.location();
        assert_eq!(param(&location, "error").as_deref(), Some("temporarily_unavailable"));
    })
    .await;
}

#[tokio::test]
async fn token_requests_that_must_fail_fail_with_their_rfc_code() {
    on_each_backend(|env| async move {
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        t.create_instance(json!({ "id": "other" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        let secret = client.client_secret.clone().unwrap();
        let pkce = pkce();
        let code = authorize_code(&server, &client.client_id, &pkce, "mcp:read").await;
        let id = client.client_id.as_str();

        // A wrong secret, Basic or in the body: 401 with a Basic challenge.
        for answer in [
            post_form(
                &server,
                "/oauth/token",
                &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &pkce.verifier)],
                Some((id, "wrong")),
            )
            .await,
            token(
                &server,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("code_verifier", &pkce.verifier),
                    ("client_id", id),
                    ("client_secret", "wrong"),
                ],
            )
            .await,
            token(&server, &[("grant_type", "authorization_code"), ("code", &code), ("client_id", id)]).await,
            token(&server, &[("grant_type", "authorization_code"), ("code", &code)]).await,
        ] {
            answer.assert_error(401, "invalid_client");
            assert!(answer.header("www-authenticate").starts_with("Basic realm="), "{answer:?}");
            assert_eq!(answer.header("cache-control"), "no-store");
        }

        let with_secret = |extra: &[(&'static str, &str)]| {
            let mut form: Vec<(&str, String)> = vec![
                ("grant_type", "authorization_code".into()),
                ("client_id", id.into()),
                ("client_secret", secret.clone()),
            ];
            form.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
            form
        };
        let send = |form: Vec<(&'static str, String)>| {
            let base = server.base.clone();
            async move {
                Answer::of(http().post(format!("{base}/oauth/token")).form(&form).send().await.unwrap()).await
            }
        };
        // Wrong verifier, missing verifier, unknown code, wrong redirect_uri.
        send(with_secret(&[("code", &code), ("code_verifier", &oauth::pkce().verifier), ("redirect_uri", CALLBACK)]))
            .await
            .assert_error(400, "invalid_grant");
        send(with_secret(&[("code", &code), ("redirect_uri", CALLBACK)])).await.assert_error(400, "invalid_request");
        send(with_secret(&[("code", "not-a-code"), ("code_verifier", &pkce.verifier)]))
            .await
            .assert_error(400, "invalid_grant");
        send(with_secret(&[("code", &code), ("code_verifier", &pkce.verifier)]))
            .await
            .assert_error(400, "invalid_grant"); // redirect_uri was in the authorization request
        send(with_secret(&[
            ("code", &code),
            ("code_verifier", &pkce.verifier),
            ("redirect_uri", "http://127.0.0.1:33418/other"),
        ]))
        .await
        .assert_error(400, "invalid_grant");
        // A resource that was not granted, or does not exist.
        send(with_secret(&[
            ("code", &code),
            ("code_verifier", &pkce.verifier),
            ("redirect_uri", CALLBACK),
            ("resource", OTHER),
        ]))
        .await
        .assert_error(400, "invalid_target");
        send(with_secret(&[
            ("code", &code),
            ("code_verifier", &pkce.verifier),
            ("redirect_uri", CALLBACK),
            ("resource", "http://127.0.0.1:8080/mcp/ghost"),
        ]))
        .await
        .assert_error(400, "invalid_target");
        // Unsupported and missing grant types.
        send(vec![("grant_type", "password".into()), ("client_id", id.into()), ("client_secret", secret.clone())])
            .await
            .assert_error(400, "unsupported_grant_type");
        send(vec![("client_id", id.into())]).await.assert_error(400, "invalid_request");
        // client_credentials is for clients an operator registered.
        send(vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", id.into()),
            ("client_secret", secret.clone()),
        ])
        .await
        .assert_error(400, "unauthorized_client");

        // After all that, the code still works once: failed attempts do not burn it.
        let ok = send(with_secret(&[("code", &code), ("code_verifier", &pkce.verifier), ("redirect_uri", CALLBACK)]))
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{ok:?}");

        let refused = sekisho_authz::audit::list(&t.app.db, Some("token.refused"), 100).await.unwrap();
        assert!(refused.len() >= 10, "{}", refused.len());
    })
    .await;
}

#[tokio::test]
async fn malformed_bodies_are_invalid_request_never_500() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let server = serve(&t.app).await;
        for path in ["/oauth/token", "/oauth/revoke", "/oauth/introspect"] {
            for (content_type, body) in [
                ("application/json", &b"{\"grant_type\": "[..]),
                ("application/json", b"[\"grant_type\"]"),
                ("application/json", b"{\"grant_type\": {\"x\": 1}}"),
                ("application/x-www-form-urlencoded", b"grant_type=\xff\xfe"),
                ("text/plain", b"grant_type=client_credentials"),
            ] {
                let answer = Answer::of(
                    http()
                        .post(format!("{}{path}", server.base))
                        .header("content-type", content_type)
                        .body(body.to_vec())
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                answer.assert_error(400, "invalid_request");
            }
            let huge = format!("grant_type={}", "a".repeat(200 * 1024));
            let answer = Answer::of(
                http()
                    .post(format!("{}{path}", server.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(huge)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert!(answer.status.is_client_error(), "{answer:?}");
        }
        let answer = Answer::of(
            http()
                .post(format!("{}/oauth/authorize/consent", server.base))
                .header("content-type", "application/json")
                .body("{oops")
                .send()
                .await
                .unwrap(),
        )
        .await;
        answer.assert_error_page("invalid_request");
    })
    .await;
}

#[tokio::test]
async fn an_https_issuer_gets_hsts_and_a_secure_cookie() {
    on_each_backend(|env| async move {
        let base = "https://auth.example.com";
        let t = env.open_with(&[("PUBLIC_BASE_URL", base), ("SEKISHO_DEV_LOGIN", "1")]).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_public(&server).await;
        let pkce = pkce();
        let resource = format!("{base}/mcp/demo");
        let mut params = code_request(&client.client_id, &pkce, "mcp:read", "s");
        params.retain(|(n, _)| *n != "resource");
        params.push(("resource", &resource));
        let page = get(&server, &authorize_path(&params), None).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        assert_eq!(page.header("strict-transport-security"), "max-age=31536000");
        assert!(page.header("set-cookie").contains("; Secure"), "{page:?}");
        let metadata = get(&server, "/.well-known/oauth-authorization-server", None).await.json();
        assert_eq!(metadata["issuer"], base);
        assert_eq!(metadata["token_endpoint"], format!("{base}/oauth/token"));
    })
    .await;
}
