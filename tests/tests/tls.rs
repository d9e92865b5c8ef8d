//! TLS at Envoy (SPEC E4, issue 8): the stack's listener serves HTTPS with a
//! certificate signed by a CA made at start-up, `PUBLIC_BASE_URL` is
//! `https://`, and a client that trusts that CA and nothing else goes the
//! whole way: discovery, dynamic registration, the development login and the
//! consent page, the token, and `tools/list` at `/mcp/demo`.

use sekisho_e2e::oauth::{self, Authorization, Pkce};
use sekisho_e2e::{Instance, Stack, StackOptions, mcp};
use serde_json::Value;

fn tls_stack() -> Stack {
    let options = StackOptions {
        tls: true,
        instances: vec![Instance::new("demo", "oauth"), Instance::new("other", "oauth")],
        // The login needs no provider; consent is asked, so the page is seen.
        authz_env: vec![("SEKISHO_DEV_LOGIN".into(), "1".into())],
        ..StackOptions::default()
    };
    Stack::start(options).expect("the stack starts with TLS")
}

fn get_json(stack: &Stack, path: &str) -> Value {
    let response = stack.http().get(format!("{}{path}", stack.base_url())).send().unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().unwrap()
}

#[test]
fn discovery_advertises_https_urls_only() {
    let stack = tls_stack();
    let base = stack.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    let challenge = stack.mcp_post("/mcp/demo", None, &mcp::initialize_request(1)).unwrap();
    assert_eq!(challenge.status, 401);
    let expected = format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp/demo\"");
    assert!(challenge.www_authenticate().unwrap_or_default().contains(&expected), "{:?}", challenge.headers);

    let resource = get_json(&stack, "/.well-known/oauth-protected-resource/mcp/demo");
    assert_eq!(resource["resource"], format!("{base}/mcp/demo"));
    assert_eq!(resource["authorization_servers"], serde_json::json!([base]));

    let metadata = get_json(&stack, "/.well-known/oauth-authorization-server");
    assert_eq!(metadata["issuer"], base);
    let endpoints: Vec<(&String, &Value)> =
        metadata.as_object().unwrap().iter().filter(|(k, _)| k.ends_with("_endpoint") || *k == "jwks_uri").collect();
    assert!(endpoints.len() >= 5, "{metadata}");
    for (name, url) in endpoints {
        assert!(url.as_str().unwrap().starts_with(&format!("{base}/")), "{name} is not under the https issuer: {url}");
    }
}

#[test]
fn a_client_trusting_only_the_generated_ca_completes_the_oauth_flow_over_https() {
    let stack = tls_stack();
    let http = stack.http();
    let base = stack.base_url();
    let resource = format!("{base}/mcp/demo");

    let client = oauth::register(http, base, "TLS scenario").unwrap();
    let pkce = Pkce::new().unwrap();
    let url = oauth::authorize_url(base, &client, &pkce, &resource, "mcp:read mcp:write").unwrap();
    let Authorization::Consent(page) = oauth::authorize(http, &url).unwrap() else {
        panic!("the development login without auto-consent shows the consent page");
    };
    // Under https the page asks browsers to stay on https, and the cookie
    // that binds the request to this browser never travels in clear.
    let hsts = page.headers.get("strict-transport-security").and_then(|v| v.to_str().ok());
    assert_eq!(hsts, Some("max-age=31536000"), "{:?}", page.headers);
    let set_cookie: Vec<&str> = page.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(set_cookie.iter().any(|c| c.starts_with("sekisho_browser=") && c.contains("; Secure")), "{set_cookie:?}");

    let redirect = oauth::decide(http, base, &page, "approve").unwrap();
    let code = redirect.code(base).unwrap();
    let tokens = oauth::redeem(http, base, &client, &code, &pkce, &resource).unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    let session = stack.session("/mcp/demo", Some(access_token)).unwrap();
    let listed = session.request("tools/list", serde_json::json!({})).unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    let tools = listed.json().unwrap();
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(names.contains(&"whoami"), "{tools}");
}

#[test]
fn plain_http_and_untrusted_certificates_are_refused_at_the_tls_port() {
    let stack = tls_stack();
    let path = "/.well-known/oauth-authorization-server";

    let plain = sekisho_e2e::http::client_builder().build().unwrap();
    let cleartext = plain.get(format!("http://127.0.0.1:{}{path}", stack.ports().envoy)).send();
    assert!(cleartext.is_err(), "the TLS listener answered plain HTTP: {:?}", cleartext.map(|r| r.status()));

    // A client that trusts another CA does not accept the stack's certificate:
    // the test client's trust is real, not "accept anything".
    let elsewhere = tempfile::tempdir().unwrap();
    let other_ca = sekisho_e2e::tls::generate(elsewhere.path()).unwrap();
    let stranger = sekisho_e2e::http::client_trusting(&other_ca.ca).unwrap();
    let untrusted = stranger.get(format!("{}{path}", stack.base_url())).send();
    assert!(untrusted.is_err(), "a certificate from another CA was accepted");

    // And the stack's own client, on the same port, succeeds.
    assert_eq!(stack.http().get(format!("{}{path}", stack.base_url())).send().unwrap().status(), 200);
}

#[test]
fn the_python_sdk_completes_the_oauth_flow_over_https_trusting_the_generated_ca() {
    // Before starting anything: a missing SDK fails at once, saying how to install it.
    sekisho_e2e::clients::python().unwrap();
    let options = StackOptions {
        tls: true,
        instances: vec![Instance::new("demo", "oauth")],
        authz_env: vec![("SEKISHO_DEV_LOGIN".into(), "1".into()), ("SEKISHO_DEV_AUTO_CONSENT".into(), "1".into())],
        ..StackOptions::default()
    };
    let stack = Stack::start(options).expect("the stack starts with TLS");
    let ca = stack.ca_certificate().unwrap().to_string_lossy().into_owned();
    let url = format!("{}/mcp/demo", stack.base_url());

    // The client's environment is cleared first, so the generated CA is the
    // only one it trusts (httpx reads SSL_CERT_FILE).
    let run = stack
        .run_python_client(
            "oauth_code.py",
            &[
                ("SEKISHO_MCP_URL", &url),
                ("SEKISHO_REDIRECT_URI", "http://127.0.0.1:33420/callback"),
                ("SSL_CERT_FILE", &ca),
            ],
            std::time::Duration::from_secs(90),
        )
        .unwrap();
    let report = run.expect_ok();

    assert_eq!(report["registrations"], 1, "{report}");
    assert_eq!(report["authorizations"], 1, "{report}");
    let tools: Vec<&str> = report["tools"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(tools.contains(&"whoami"), "{report}");
    assert_eq!(report["whoami"]["headers"]["x-sekisho-auth"], "jwt", "{report}");
    assert_eq!(report["whoami"]["headers"]["x-sekisho-subject"], "dev-user", "{report}");
}
