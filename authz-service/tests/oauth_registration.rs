//! How clients find the server and become known to it: authorization-server
//! metadata, dynamic registration (RFC 7591/7592), Client ID Metadata
//! Documents, and the operator's `clients` CLI.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use std::net::SocketAddr;
use std::process::Command;

use axum::Router;
use axum::http::StatusCode as AxumStatus;
use axum::response::IntoResponse;
use axum::routing::get as route_get;
use common::{ISSUER, TestEnv, on_each_backend};
use oauth::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[tokio::test]
async fn metadata_is_the_same_document_under_every_name() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let server = serve(&t.app).await;
        let oauth_doc = get(&server, "/.well-known/oauth-authorization-server", None).await;
        assert_eq!(oauth_doc.status, StatusCode::OK);
        let oauth = oauth_doc.json();
        assert_eq!(oauth["issuer"], ISSUER, "byte-identical, no trailing slash");
        for (field, path) in [
            ("authorization_endpoint", "/oauth/authorize"),
            ("token_endpoint", "/oauth/token"),
            ("registration_endpoint", "/oauth/register"),
            ("revocation_endpoint", "/oauth/revoke"),
            ("introspection_endpoint", "/oauth/introspect"),
            ("jwks_uri", "/oauth/jwks"),
        ] {
            assert_eq!(oauth[field], format!("{ISSUER}{path}"), "{field}");
        }
        assert_eq!(oauth["response_types_supported"], json!(["code"]));
        assert_eq!(oauth["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            oauth["grant_types_supported"],
            json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        assert_eq!(
            oauth["token_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "client_secret_post", "none"])
        );
        assert_eq!(oauth["authorization_response_iss_parameter_supported"], true);
        assert_eq!(oauth["client_id_metadata_document_supported"], true);
        assert_eq!(oauth["scopes_supported"], json!(["mcp:read", "mcp:write", "mcp:admin", "offline_access"]));
        assert!(oauth["revocation_endpoint_auth_methods_supported"].is_array());
        assert!(oauth["introspection_endpoint_auth_methods_supported"].is_array());

        let openid = get(&server, "/.well-known/openid-configuration", None).await.json();
        for (key, value) in oauth.as_object().unwrap() {
            assert_eq!(&openid[key], value, "{key} differs between the two documents");
        }
        assert_eq!(openid["subject_types_supported"], json!(["public"]));
        // Path-inserted variants answer with the same document.
        for path in ["/.well-known/oauth-authorization-server/mcp/demo", "/.well-known/openid-configuration/mcp/demo"] {
            let doc = get(&server, path, None).await;
            assert_eq!(doc.status, StatusCode::OK, "{path}");
            assert_eq!(doc.json()["issuer"], ISSUER);
        }
        // Cross-origin readable, preflight included.
        let preflight = Answer::of(
            http()
                .request(reqwest::Method::OPTIONS, format!("{}/.well-known/oauth-authorization-server", server.base))
                .header("origin", "http://localhost:6274")
                .header("access-control-request-method", "GET")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(preflight.status.is_success(), "{preflight:?}");
        assert_eq!(preflight.header("access-control-allow-origin"), "*");
        // The token and registration endpoints too (browser-based clients).
        let preflight = Answer::of(
            http()
                .request(reqwest::Method::OPTIONS, format!("{}/oauth/token", server.base))
                .header("origin", "http://localhost:6274")
                .header("access-control-request-method", "POST")
                .header("access-control-request-headers", "authorization, content-type")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(preflight.status.is_success(), "{preflight:?}");
        assert!(preflight.header("access-control-allow-headers").contains("authorization"));
    })
    .await;
}

#[tokio::test]
async fn registration_is_lenient_in_form_and_strict_in_substance() {
    on_each_backend(|env| async move {
        // Eighteen registrations from one address, more than the default
        // per-IP budget; rate limits have their own tests (rate_limits.rs).
        let t = env.open_with(&[("SEKISHO_RATE_LIMIT_REGISTER", "off")]).await;
        let server = serve(&t.app).await;
        // The TypeScript SDK's minimal body: RFC 7591 defaults.
        let minimal = register(&server, json!({ "redirect_uris": [CALLBACK] })).await;
        let body = &minimal.body;
        assert_eq!(body["grant_types"], json!(["authorization_code"]));
        assert_eq!(body["response_types"], json!(["code"]));
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
        assert!(body["client_secret"].is_string());
        assert_eq!(body["client_secret_expires_at"], 0);
        assert!(body["client_id_issued_at"].as_i64().unwrap() > 0);
        assert!(body["registration_access_token"].is_string());
        assert_eq!(body["registration_client_uri"], format!("{ISSUER}/oauth/register/{}", minimal.client_id));
        // The Python SDK's body, nulls and application_type included.
        let python = register(
            &server,
            json!({
                "redirect_uris": [CALLBACK],
                "token_endpoint_auth_method": "client_secret_post",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "scope": "mcp:read",
                "client_name": "py",
                "client_uri": null,
                "logo_uri": null,
                "jwks": null,
                "application_type": "native",
                "unknown_extension": true,
            }),
        )
        .await;
        assert_eq!(python.body["application_type"], "native");
        assert!(python.body.get("unknown_extension").is_none());
        let native = register(
            &server,
            json!({ "redirect_uris": ["com.example.app:/oauth/callback"], "token_endpoint_auth_method": "none" }),
        )
        .await;
        assert!(native.client_secret.is_none());

        // Stored as keyed hashes only.
        let (secret_hash, token_hash): (Option<String>, Option<String>) =
            sqlx::query_as("SELECT secret_hash, registration_token_hash FROM oauth_clients WHERE client_id = $1")
                .bind(&minimal.client_id)
                .fetch_one(t.app.db.pool())
                .await
                .unwrap();
        let (secret_hash, token_hash) = (secret_hash.unwrap(), token_hash.unwrap());
        assert!(secret_hash.starts_with("v1:") && token_hash.starts_with("v1:"));
        assert!(!secret_hash.contains(minimal.client_secret.as_deref().unwrap()));

        for (uris, code) in [
            (json!(["javascript:alert(1)"]), "invalid_redirect_uri"),
            (json!(["http://example.com/callback"]), "invalid_redirect_uri"),
            (json!(["https://app.example.com/callback#fragment"]), "invalid_redirect_uri"),
            (json!(["https://*.example.com/callback"]), "invalid_redirect_uri"),
            (json!(["data:text/html,x"]), "invalid_redirect_uri"),
            (json!([]), "invalid_redirect_uri"),
            (json!("https://app.example.com/callback"), "invalid_client_metadata"),
        ] {
            post_json(&server, "/oauth/register", &json!({ "redirect_uris": uris })).await.assert_error(400, code);
        }
        for body in [
            json!({ "redirect_uris": [CALLBACK], "grant_types": ["client_credentials"] }),
            json!({ "redirect_uris": [CALLBACK], "grant_types": ["implicit"] }),
            json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "private_key_jwt" }),
            json!({ "redirect_uris": [CALLBACK], "scope": "bad\"scope" }),
            json!({ "redirect_uris": [CALLBACK], "client_name": 42 }),
        ] {
            post_json(&server, "/oauth/register", &body).await.assert_error(400, "invalid_client_metadata");
        }
        for raw in ["{not json", "[]", ""] {
            let answer = Answer::of(
                http()
                    .post(format!("{}/oauth/register", server.base))
                    .header("content-type", "application/json")
                    .body(raw)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            answer.assert_error(400, "invalid_request");
        }
        let audited = sekisho_authz::audit::list(&t.app.db, Some("client.registered"), 10).await.unwrap();
        assert_eq!(audited.len(), 3);
        let text = serde_json::to_string(&audited).unwrap();
        assert!(!text.contains(minimal.client_secret.as_deref().unwrap()));
    })
    .await;
}

#[tokio::test]
async fn rfc7592_management_needs_the_registration_access_token() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let server = serve(&t.app).await;
        let client = register(&server, json!({ "redirect_uris": [CALLBACK], "client_name": "before" })).await;
        let token = client.body["registration_access_token"].as_str().unwrap().to_owned();
        let uri = format!("{}/oauth/register/{}", server.base, client.client_id);
        let with = |method: reqwest::Method, bearer: Option<&str>| {
            let mut request = http().request(method, &uri);
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            request
        };

        let read = Answer::of(with(reqwest::Method::GET, Some(&token)).send().await.unwrap()).await;
        assert_eq!(read.status, StatusCode::OK, "{read:?}");
        assert_eq!(read.json()["client_name"], "before");
        assert!(read.json().get("client_secret").is_none(), "only its hash is kept");

        for bearer in [None, Some("wrong")] {
            let answer = Answer::of(with(reqwest::Method::GET, bearer).send().await.unwrap()).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
            assert!(answer.header("www-authenticate").starts_with("Bearer"));
        }

        let updated = Answer::of(
            with(reqwest::Method::PUT, Some(&token))
                .json(&json!({
                    "client_id": client.client_id,
                    "redirect_uris": [CALLBACK, "https://app.example.com/cb"],
                    "client_name": "after",
                }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(updated.status, StatusCode::OK, "{updated:?}");
        assert_eq!(updated.json()["client_name"], "after");
        let becoming_public = Answer::of(
            with(reqwest::Method::PUT, Some(&token))
                .json(&json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none" }))
                .send()
                .await
                .unwrap(),
        )
        .await;
        becoming_public.assert_error(400, "invalid_client_metadata");

        let deleted = Answer::of(with(reqwest::Method::DELETE, Some(&token)).send().await.unwrap()).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
        let gone = Answer::of(with(reqwest::Method::GET, Some(&token)).send().await.unwrap()).await;
        assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
        // A deleted client can no longer authenticate.
        post_form(
            &server,
            "/oauth/token",
            &[("grant_type", "authorization_code"), ("code", "x")],
            Some((&client.client_id, client.client_secret.as_deref().unwrap())),
        )
        .await
        .assert_error(401, "invalid_client");
    })
    .await;
}

/// Serves client metadata documents on 127.0.0.1; returns its base URL.
async fn document_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let document = |client_id: String| {
        json!({
            "client_id": client_id,
            "client_name": "Metadata document app",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
    };
    let good = document(format!("{base}/good.json"));
    let liar = document("https://app.example.com/client.json".to_owned());
    let router = Router::new()
        .route("/good.json", route_get(move || async move { axum::Json(good) }))
        .route("/liar.json", route_get(move || async move { axum::Json(liar) }))
        .route("/moved.json", route_get(|| async { (AxumStatus::FOUND, [("location", "/good.json")]).into_response() }))
        .route("/huge.json", route_get(|| async { "x".repeat(100 * 1024) }))
        .route("/missing.json", route_get(|| async { AxumStatus::NOT_FOUND }));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    (base, task)
}

#[tokio::test]
async fn a_client_metadata_document_client_logs_in_and_liars_are_refused() {
    on_each_backend(|env| async move {
        let t = env.open_with(&[HEADLESS[0], HEADLESS[1], ("SEKISHO_CIMD_ALLOW_LOOPBACK", "1")]).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let (docs, task) = document_server().await;

        let client_id = format!("{docs}/good.json");
        let client = Registered { client_id: client_id.clone(), client_secret: None, body: Value::Null };
        let tokens = tokens_for(&server, &client, "mcp:read").await;
        assert!(tokens["refresh_token"].is_string(), "its document lists refresh_token");
        let (claims, _) = common::verify(tokens["access_token"].as_str().unwrap(), &t.jwks().await).unwrap();
        assert_eq!(claims.client_id, client_id);

        // A redirect URI its document does not list: an error page.
        let pkce = pkce();
        let mut params = code_request(&client_id, &pkce, "mcp:read", "s");
        params.retain(|(n, _)| *n != "redirect_uri");
        params.push(("redirect_uri", "http://127.0.0.1:9/elsewhere"));
        get(&server, &authorize_path(&params), None).await.assert_error_page("invalid_request");

        for bad in ["liar.json", "moved.json", "huge.json", "missing.json"] {
            let id = format!("{docs}/{bad}");
            get(&server, &authorize_path(&code_request(&id, &pkce, "mcp:read", "s")), None)
                .await
                .assert_error_page("invalid_client");
            token(
                &server,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "x"),
                    ("code_verifier", &pkce.verifier),
                    ("client_id", &id),
                ],
            )
            .await
            .assert_error(401, "invalid_client");
        }
        task.abort();
    })
    .await;
}

#[tokio::test]
async fn metadata_documents_on_private_addresses_are_not_fetched() {
    on_each_backend(|env| async move {
        // Loopback NOT allowed: the production behaviour.
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let (docs, task) = document_server().await;
        let port = docs.rsplit(':').next().unwrap().to_owned();
        let pkce = pkce();
        for id in [
            format!("{docs}/good.json"),
            format!("https://127.0.0.1:{port}/good.json"),
            format!("https://localhost:{port}/good.json"),
            "https://10.0.0.1/client.json".to_owned(),
            "https://169.254.169.254/latest/meta-data.json".to_owned(),
            "https://[::1]/client.json".to_owned(),
        ] {
            let page = get(&server, &authorize_path(&code_request(&id, &pkce, "mcp:read", "s")), None).await;
            page.assert_error_page("invalid_client");
            token(
                &server,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", "x"),
                    ("code_verifier", &pkce.verifier),
                    ("client_id", &id),
                ],
            )
            .await
            .assert_error(401, "invalid_client");
        }
        task.abort();
    })
    .await;
}

fn cli(env: &TestEnv, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
        .args(args)
        .env_clear()
        .envs(env.vars())
        .env("SEKISHO_ADMIN_TOKEN", "")
        .output()
        .expect("the binary runs")
}

fn stdout_of(env: &TestEnv, args: &[&str]) -> String {
    let output = cli(env, args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn operators_register_list_and_revoke_clients_with_the_cli() {
    on_each_backend(|env| async move {
        let out = stdout_of(
            &env,
            &[
                "clients",
                "register",
                "--name",
                "batch job",
                "--confidential",
                "--grant-type",
                "client_credentials",
                "--scope",
                "mcp:read",
            ],
        );
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("{name} in {out}"))
        };
        let (client_id, secret) = (field("client_id"), field("client_secret"));

        let t = env.open().await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let answer =
            post_form(&server, "/oauth/token", &[("grant_type", "client_credentials")], Some((&client_id, &secret)))
                .await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");

        let public = stdout_of(&env, &["clients", "register", "--name", "desk", "--redirect-uri", CALLBACK, "--json"]);
        let public: Value = serde_json::from_str(&public).unwrap();
        assert_eq!(public["token_endpoint_auth_method"], "none");
        assert!(public.get("client_secret").is_none());

        let listed: Value = serde_json::from_str(&stdout_of(&env, &["clients", "list", "--json"])).unwrap();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(!serde_json::to_string(listed).unwrap().contains(&secret));
        assert!(stdout_of(&env, &["clients", "list"]).contains("batch job"));

        assert!(stdout_of(&env, &["clients", "revoke", &client_id]).contains("revoked"));
        post_form(&server, "/oauth/token", &[("grant_type", "client_credentials")], Some((&client_id, &secret)))
            .await
            .assert_error(401, "invalid_client");
        let again = cli(&env, &["clients", "revoke", &client_id]);
        assert!(!again.status.success());
        let bad = cli(&env, &["clients", "register", "--name", "x", "--redirect-uri", "javascript:alert(1)"]);
        assert!(!bad.status.success());
        assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_redirect_uri"));
    })
    .await;
}

#[tokio::test]
async fn production_refuses_the_development_switches_at_start() {
    on_each_backend(|env| async move {
        for switch in ["SEKISHO_DEV_LOGIN", "SEKISHO_DEV_AUTO_CONSENT", "SEKISHO_CIMD_ALLOW_LOOPBACK"] {
            let output = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
                .arg("serve")
                .env_clear()
                .envs(env.vars())
                .env("SEKISHO_ENV", "production")
                .env(switch, "1")
                .output()
                .expect("the binary runs");
            assert_eq!(output.status.code(), Some(2), "{switch}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(stderr.contains(switch) && stderr.contains("production"), "{stderr}");
        }
    })
    .await;
}
