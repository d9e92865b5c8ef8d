//! The filter's decisions, exercised natively as scenarios: what a caller sends,
//! what the gate answers.

use p256::ecdsa::SigningKey;
use proptest::prelude::*;
use sekisho_contract::api_key::{InvalidReason, ValidKey, Verdict, VerifyResponse};
use sekisho_contract::claims::{AccessTokenClaims, Audience};
use sekisho_contract::jwk::{Jwk, Jwks};
use sekisho_contract::jws;
use sekisho_contract::policy::{AuthMode, FilterPolicy, InstancePolicy, RevokedToken};
use sekisho_filter::config::FilterConfig;
use sekisho_filter::decision::{Gate, Grant, Head, HeadVerdict, Refusal};
use sekisho_filter::keys::KeySet;
use sekisho_filter::stats::Counter;
use sekisho_filter::token::PureRust;
use serde_json::json;

const BASE: &str = "http://127.0.0.1:8080";
const NOW: i64 = 1_800_000_000;

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

fn kid(key: &SigningKey) -> String {
    sekisho_contract::jwk::thumbprint(key.verifying_key())
}

fn claims(instance: &str, scope: &str) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: BASE.into(),
        sub: "alice".into(),
        aud: Audience::One(format!("{BASE}/mcp/{instance}")),
        exp: NOW + 900,
        iat: NOW - 10,
        nbf: None,
        jti: "jti-1".into(),
        client_id: "client-1".into(),
        scope: scope.into(),
    }
}

fn sign(c: &AccessTokenClaims) -> String {
    let key = signing_key(1);
    jws::sign_es256(c, jws::ACCESS_TOKEN_TYP, &kid(&key), &key).unwrap()
}

fn instance(id: &str, mode: AuthMode) -> InstancePolicy {
    InstancePolicy { id: id.into(), auth_mode: mode, ..Default::default() }
}

fn gate() -> Gate {
    let mut g = Gate::new(FilterConfig::default());
    let mut tools = instance("tools", AuthMode::Oauth);
    tools.tool_scopes.insert("deploy".into(), "mcp:admin".into());
    g.set_policy(FilterPolicy {
        issuer: BASE.into(),
        instances: vec![
            instance("demo", AuthMode::Oauth),
            instance("other", AuthMode::Oauth),
            instance("keys", AuthMode::ApiKey),
            instance("open", AuthMode::None),
            tools,
        ],
        revoked: vec![],
    });
    let jwks = Jwks { keys: vec![Jwk::es256(signing_key(1).verifying_key())] };
    g.set_keys(KeySet::from_jwks(&serde_json::to_vec(&jwks).unwrap()).unwrap());
    g
}

fn post(path: &str, auth: Option<&str>) -> Head<'static> {
    let path: &'static str = Box::leak(path.to_owned().into_boxed_str());
    let authorization = auth.map(|a| &*Box::leak(a.to_owned().into_bytes().into_boxed_slice()));
    Head { method: b"POST", path, authorization, api_key: None, now: NOW }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn refused(v: HeadVerdict) -> Refusal {
    match v {
        HeadVerdict::Refuse(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn granted(v: HeadVerdict) -> Grant {
    match v {
        HeadVerdict::Allow(g) | HeadVerdict::ReadBody(g) => g,
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn error_of(r: &Refusal) -> String {
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[test]
fn a_valid_write_token_is_allowed_without_reading_the_body() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:read mcp:write"));
    let verdict = g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true);
    let HeadVerdict::Allow(grant) = verdict else { panic!("{verdict:?}") };
    let headers: Vec<(&str, &str)> = grant.identity_headers().collect();
    let get = |n: &str| headers.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
    assert_eq!(get("x-sekisho-subject"), Some("alice"));
    assert_eq!(get("x-sekisho-client-id"), Some("client-1"));
    assert_eq!(get("x-sekisho-scopes"), Some("mcp:read mcp:write"));
    assert_eq!(get("x-sekisho-auth"), Some("jwt"));
    assert_eq!(get("x-sekisho-instance"), Some("demo"));
    assert_eq!(g.tally.get(Counter::Allowed), 1);
}

#[test]
fn no_credential_gets_a_challenge_pointing_at_the_metadata() {
    let mut g = gate();
    let r = refused(g.decide_head(&post("/mcp/demo", None), &PureRust, true));
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!(
            "Bearer scope=\"mcp:read mcp:write\", resource_metadata=\"{BASE}/.well-known/oauth-protected-resource/mcp/demo\""
        ))
        .as_deref()
    );
    assert_eq!(g.tally.get(Counter::DeniedMissingCredential), 1);
}

#[test]
fn bad_tokens_are_invalid_token() {
    let other_key = signing_key(2);
    let mut expired = claims("demo", "mcp:read");
    expired.exp = NOW - 31;
    let mut early = claims("demo", "mcp:read");
    early.nbf = Some(NOW + 120);
    let mut wrong_iss = claims("demo", "mcp:read");
    wrong_iss.iss = format!("{BASE}/");
    // Signed by the issuer, but its subject would start a header upstream.
    let mut header_in_sub = claims("demo", "mcp:read");
    header_in_sub.sub = "alice\r\nx-sekisho-scopes: mcp:admin".into();
    let mut header_in_client = claims("demo", "mcp:read");
    header_in_client.client_id = "client-1\nx-evil: 1".into();
    let wrong_sig =
        jws::sign_es256(&claims("demo", "mcp:read"), jws::ACCESS_TOKEN_TYP, &kid(&signing_key(1)), &other_key).unwrap();
    let b64 = |v: serde_json::Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    };
    let payload = b64(serde_json::to_value(claims("demo", "mcp:admin")).unwrap());
    let alg_none = format!("{}.{payload}.", b64(json!({"alg": "none", "typ": "at+jwt", "kid": kid(&signing_key(1))})));
    let hs256 = format!(
        "{}.{payload}.{}",
        b64(json!({"alg": "HS256", "typ": "at+jwt", "kid": kid(&signing_key(1))})),
        "A".repeat(43)
    );
    let cases = [
        ("expired", sign(&expired)),
        ("not yet valid", sign(&early)),
        ("wrong issuer", sign(&wrong_iss)),
        ("CR LF in the subject", sign(&header_in_sub)),
        ("LF in the client id", sign(&header_in_client)),
        ("wrong signature", wrong_sig),
        ("alg none", alg_none),
        ("HS256", hs256),
        ("garbage", "garbage".to_owned()),
        ("oversized", format!("{}.{}.{}", "a".repeat(9000), "b", "c")),
    ];
    for (what, token) in cases {
        let mut g = gate();
        let r = refused(g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true));
        assert_eq!((r.status, error_of(&r).as_str()), (401, "invalid_token"), "{what}");
        let challenge = r.header("www-authenticate").unwrap();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\", error_description="), "{what}: {challenge}");
        assert!(challenge.contains("resource_metadata="), "{what}");
        assert!(!challenge.contains(&token[..token.len().min(20)]), "{what}: the challenge echoes the token");
        assert_eq!(g.tally.get(Counter::DeniedInvalidToken), 1, "{what}");
    }
}

#[test]
fn an_unknown_key_asks_for_a_refresh_once_then_refuses() {
    let mut g = gate();
    let key = signing_key(3);
    let token = jws::sign_es256(&claims("demo", "mcp:read"), jws::ACCESS_TOKEN_TYP, &kid(&key), &key).unwrap();
    let head = post("/mcp/demo", Some(&bearer(&token)));
    assert!(matches!(g.decide_head(&head, &PureRust, true), HeadVerdict::UnknownKey));
    let r = refused(g.decide_head(&head, &PureRust, false));
    assert_eq!(r.status, 401);
    // Once the refreshed key set has the key, the same token passes.
    let jwks = Jwks { keys: vec![Jwk::es256(signing_key(1).verifying_key()), Jwk::es256(key.verifying_key())] };
    g.set_keys(KeySet::from_jwks(&serde_json::to_vec(&jwks).unwrap()).unwrap());
    granted(g.decide_head(&head, &PureRust, false));
}

#[test]
fn a_token_for_another_instance_is_refused_even_from_the_cache() {
    let mut g = gate();
    let token = sign(&claims("other", "mcp:write"));
    granted(g.decide_head(&post("/mcp/other", Some(&bearer(&token))), &PureRust, true));
    let r = refused(g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true));
    assert_eq!((r.status, error_of(&r).as_str()), (401, "invalid_token"));
    assert_eq!(g.tally.get(Counter::CacheHit), 1);
    assert_eq!(g.tally.get(Counter::DeniedWrongAudience), 1);
}

#[test]
fn a_seen_token_costs_a_cache_hit_until_it_expires() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:write"));
    for _ in 0..3 {
        granted(g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true));
    }
    assert_eq!((g.tally.get(Counter::CacheMiss), g.tally.get(Counter::CacheHit)), (1, 2));
    let mut late = post("/mcp/demo", Some(&bearer(&token)));
    late.now = NOW + 900 + 30;
    let r = refused(g.decide_head(&late, &PureRust, true));
    assert_eq!(r.status, 401);
    assert_eq!(g.cached_tokens(), 0);
}

#[test]
fn read_only_tokens_may_list_but_not_call_tools() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:read"));
    let head = post("/mcp/demo", Some(&bearer(&token)));
    let HeadVerdict::ReadBody(grant) = g.decide_head(&head, &PureRust, true) else {
        panic!("body needed")
    };
    assert_eq!(g.decide_body(&grant, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#), Ok(()));
    let r = g
        .decide_body(&grant, br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add_note"}}"#)
        .unwrap_err();
    assert_eq!(r.status, 403);
    let challenge = r.header("www-authenticate").unwrap();
    assert!(challenge.starts_with("Bearer error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("scope=\"mcp:write\""), "{challenge}");
    assert!(challenge.contains(&format!("resource_metadata=\"{BASE}/.well-known/oauth-protected-resource/mcp/demo\"")));
}

#[test]
fn tool_policies_name_every_scope_a_batch_needs() {
    let mut g = gate();
    let token = sign(&claims("tools", "mcp:write"));
    let head = post("/mcp/tools", Some(&bearer(&token)));
    // A custom policy means mcp:write no longer covers everything: read the body.
    let HeadVerdict::ReadBody(grant) = g.decide_head(&head, &PureRust, true) else {
        panic!("body needed")
    };
    assert_eq!(
        g.decide_body(&grant, br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#),
        Ok(())
    );
    let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}},
                     {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"deploy"}}]"#;
    let r = g.decide_body(&grant, batch).unwrap_err();
    assert!(r.header("www-authenticate").unwrap().contains("scope=\"mcp:write mcp:admin\""));
}

#[test]
fn broken_json_rpc_is_a_400_with_a_json_rpc_error() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:read"));
    let HeadVerdict::ReadBody(grant) = g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true) else {
        panic!("body needed")
    };
    for (body, code) in [(&b"{not json"[..], -32700), (b"{\"id\":1}", -32600), (b"", -32700)] {
        let r = g.decide_body(&grant, body).unwrap_err();
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!((r.status, json["error"]["code"].as_i64()), (400, Some(code)));
    }
}

#[test]
fn get_and_delete_need_read_scope_only() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:read"));
    let mut head = post("/mcp/demo", Some(&bearer(&token)));
    head.method = b"GET";
    assert!(matches!(g.decide_head(&head, &PureRust, true), HeadVerdict::Allow(_)));
    head.method = b"DELETE";
    assert!(matches!(g.decide_head(&head, &PureRust, true), HeadVerdict::Allow(_)));
    head.method = b"PUT";
    assert_eq!(refused(g.decide_head(&head, &PureRust, true)).status, 405);
}

#[test]
fn paths_preflights_and_unknown_instances() {
    let mut g = gate();
    let mut head = post("/mcp/demo", None);
    head.method = b"OPTIONS";
    assert!(matches!(g.decide_head(&head, &PureRust, true), HeadVerdict::PassThrough));
    assert!(matches!(g.decide_head(&post("/oauth/token", None), &PureRust, true), HeadVerdict::PassThrough));
    assert_eq!(refused(g.decide_head(&post("/mcp/nope", None), &PureRust, true)).status, 404);
    assert_eq!(refused(g.decide_head(&post("/mcp/%2e%2e", None), &PureRust, true)).status, 404);
}

#[test]
fn before_the_first_policy_arrives_requests_get_503_with_retry_after() {
    let mut g = Gate::new(FilterConfig::default());
    let r = refused(g.decide_head(&post("/mcp/demo", Some("Bearer x")), &PureRust, true));
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(error_of(&r), "temporarily_unavailable");
}

#[test]
fn auth_modes_decide_which_credentials_count() {
    let mut g = gate();
    let token = sign(&claims("keys", "mcp:write"));
    let r = refused(g.decide_head(&post("/mcp/keys", Some(&bearer(&token))), &PureRust, true));
    assert!(r.header("www-authenticate").unwrap().contains("accepts API keys only"));
    let mut head = post("/mcp/demo?api-key=sk_x", None);
    let r = refused(g.decide_head(&head, &PureRust, true));
    assert!(r.header("www-authenticate").unwrap().contains("does not accept API keys"));
    head.path = "/mcp/open?api-key=sk_x&a=1";
    let grant = granted(g.decide_head(&head, &PureRust, true));
    assert_eq!(grant.rewritten_path.as_deref(), Some("/mcp/open?a=1"));
    assert_eq!(grant.identity_headers().next(), Some(("x-sekisho-auth", "none")));
}

#[test]
fn two_credentials_are_a_bad_request() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:write"));
    let head = Head { api_key: Some(b"sk_x"), ..post("/mcp/demo", Some(&bearer(&token))) };
    let r = refused(g.decide_head(&head, &PureRust, true));
    assert_eq!((r.status, error_of(&r).as_str()), (400, "invalid_request"));
}

#[test]
fn a_bearer_value_that_is_not_token68_is_a_bad_request_with_or_without_keys() {
    for value in ["Bearer a b", "Bearer a\"b", "Bearer \u{e9}t"] {
        for keys_loaded in [true, false] {
            let mut g = gate();
            if !keys_loaded {
                g.set_keys(KeySet::default());
            }
            let head = Head { authorization: Some(value.as_bytes()), ..post("/mcp/demo", None) };
            let r = refused(g.decide_head(&head, &PureRust, true));
            assert_eq!((r.status, error_of(&r).as_str()), (400, "invalid_request"), "{value:?}, keys {keys_loaded}");
            assert!(r.header("www-authenticate").unwrap().contains("malformed"), "{value:?}");
            assert_eq!(g.tally.get(Counter::DeniedBadRequest), 1);
        }
    }
}

#[test]
fn a_new_key_set_drops_cached_tokens() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:write"));
    granted(g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true));
    assert_eq!(g.cached_tokens(), 1);
    // The signing key is withdrawn: its tokens must stop working at once.
    let jwks = Jwks { keys: vec![Jwk::es256(signing_key(4).verifying_key())] };
    g.set_keys(KeySet::from_jwks(&serde_json::to_vec(&jwks).unwrap()).unwrap());
    assert_eq!(g.cached_tokens(), 0);
    assert!(matches!(
        g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true),
        HeadVerdict::UnknownKey
    ));
}

#[test]
fn a_revoked_token_stops_working_even_when_cached() {
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:write"));
    granted(g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true));
    let mut policy = FilterPolicy {
        issuer: BASE.into(),
        instances: vec![instance("demo", AuthMode::Oauth)],
        revoked: vec![RevokedToken { jti: "jti-1".into(), exp: NOW + 900 }],
    };
    g.set_policy(policy.clone());
    let r = refused(g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true));
    assert!(r.header("www-authenticate").unwrap().contains("revoked"));
    policy.revoked.clear();
    g.set_policy(policy);
    granted(g.decide_head(&post("/mcp/demo", Some(&bearer(&token))), &PureRust, true));
}

fn api_key() -> String {
    let mut n = 7u8;
    sekisho_contract::api_key::generate(|buf| {
        for b in buf {
            *b = n;
            n = n.wrapping_mul(31).wrapping_add(11);
        }
    })
}

fn with_key(path: &str, key: &str) -> Head<'static> {
    let key: &'static [u8] = Box::leak(key.to_owned().into_bytes().into_boxed_slice());
    Head { api_key: Some(key), ..post(path, None) }
}

fn valid_answer(instances: &[&str], scope: &str) -> VerifyResponse {
    VerifyResponse {
        verdict: Verdict::Valid(ValidKey {
            key_id: "ak_1".into(),
            instances: instances.iter().map(|i| (*i).to_owned()).collect(),
            scope: scope.into(),
            expires_at: None,
        }),
        cache_seconds: 30,
    }
}

#[test]
fn a_malformed_api_key_is_refused_without_asking_the_service() {
    let mut g = gate();
    let mut key = api_key();
    key.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    let r = refused(g.decide_head(&with_key("/mcp/keys", &key), &PureRust, true));
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().contains("malformed"));
}

#[test]
fn a_malformed_api_key_is_never_cached_even_if_an_answer_is_recorded_for_it() {
    // A cached key skips the format check, so nothing may put a malformed one there.
    let mut g = gate();
    let mut key = api_key();
    key.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    assert_eq!(g.record_api_key(&key, &valid_answer(&["keys"], "mcp:read mcp:write"), NOW, i64::MAX), NOW);
    let r = refused(g.decide_head(&with_key("/mcp/keys", &key), &PureRust, true));
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().contains("malformed"));
}

#[test]
fn an_api_key_is_looked_up_once_then_served_from_the_cache_until_the_bound() {
    let mut g = gate();
    let key = api_key();
    let head = with_key("/mcp/keys", &key);
    let HeadVerdict::LookupApiKey(asked) = g.decide_head(&head, &PureRust, true) else {
        panic!("lookup expected")
    };
    assert_eq!(asked, key);
    let until = g.record_api_key(&key, &valid_answer(&["keys"], "mcp:read mcp:write"), NOW, i64::MAX);
    assert_eq!(until, NOW + 30);
    let grant = granted(g.decide_head(&head, &PureRust, true));
    assert_eq!(grant.identity.kind, sekisho_contract::identity::AuthKind::ApiKey);
    assert_eq!(grant.identity.subject.as_deref(), Some("ak_1"));
    // Query-string keys are taken out of the path.
    let from_query = post(&format!("/mcp/keys?api-key={key}&x=1"), None);
    assert_eq!(granted(g.decide_head(&from_query, &PureRust, true)).rewritten_path.as_deref(), Some("/mcp/keys?x=1"));
    // After the bound the service is asked again (so a revocation lands within it).
    let mut later = head;
    later.now = NOW + 30;
    assert!(matches!(g.decide_head(&later, &PureRust, true), HeadVerdict::LookupApiKey(_)));
}

#[test]
fn an_answer_whose_key_id_cannot_travel_as_a_header_is_not_trusted() {
    let mut g = gate();
    let key = api_key();
    let mut answer = valid_answer(&["keys"], "mcp:read mcp:write");
    if let Verdict::Valid(k) = &mut answer.verdict {
        k.key_id = "ak_1\r\nx-sekisho-subject: admin".into();
    }
    assert_eq!(g.record_api_key(&key, &answer, NOW, i64::MAX), NOW, "nothing cached");
    assert!(matches!(g.decide_head(&with_key("/mcp/keys", &key), &PureRust, true), HeadVerdict::LookupApiKey(_)));
    let r = refused(g.decide_head(&with_key("/mcp/keys", &key), &PureRust, false));
    assert_eq!(r.status, 503);
}

#[test]
fn an_api_key_for_another_instance_is_forbidden() {
    let mut g = gate();
    let key = api_key();
    g.record_api_key(&key, &valid_answer(&["other"], "mcp:write"), NOW, i64::MAX);
    let mut policy_with_both = FilterPolicy {
        issuer: BASE.into(),
        instances: vec![instance("keys", AuthMode::ApiKey), instance("other", AuthMode::Both)],
        revoked: vec![],
    };
    g.set_policy(policy_with_both.clone());
    let r = refused(g.decide_head(&with_key("/mcp/keys", &key), &PureRust, true));
    assert_eq!(r.status, 403);
    granted(g.decide_head(&with_key("/mcp/other", &key), &PureRust, true));
    policy_with_both.instances[1].auth_mode = AuthMode::Oauth;
    g.set_policy(policy_with_both);
    assert_eq!(refused(g.decide_head(&with_key("/mcp/other", &key), &PureRust, true)).status, 401);
}

#[test]
fn a_read_only_api_key_lists_but_cannot_call_tools() {
    let mut g = gate();
    let key = api_key();
    g.record_api_key(&key, &valid_answer(&["keys"], "mcp:read"), NOW, i64::MAX);
    let HeadVerdict::ReadBody(grant) = g.decide_head(&with_key("/mcp/keys", &key), &PureRust, true) else {
        panic!("body needed")
    };
    assert_eq!(g.decide_body(&grant, br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#), Ok(()));
    let r =
        g.decide_body(&grant, br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}"#).unwrap_err();
    assert_eq!(r.status, 403);
    assert!(r.header("www-authenticate").unwrap().contains("scope=\"mcp:write\""));
}

#[test]
fn unknown_revoked_and_expired_keys_are_negatively_cached() {
    for (reason, words) in [
        (InvalidReason::Unknown, "not recognised"),
        (InvalidReason::Revoked, "revoked"),
        (InvalidReason::Expired, "expired"),
    ] {
        let mut g = gate();
        let key = api_key();
        g.record_api_key(&key, &VerifyResponse { verdict: Verdict::Invalid(reason), cache_seconds: 30 }, NOW, i64::MAX);
        for _ in 0..3 {
            let r = refused(g.decide_head(&with_key("/mcp/keys", &key), &PureRust, true));
            assert_eq!(r.status, 401);
            assert!(r.header("www-authenticate").unwrap().contains(words), "{reason:?}");
        }
        assert_eq!(g.tally.get(Counter::CacheHit), 3);
    }
}

#[test]
fn the_filter_caps_how_long_it_trusts_a_verdict() {
    let mut g = gate();
    let key = api_key();
    let mut answer = valid_answer(&["keys"], "mcp:read");
    answer.cache_seconds = 86_400;
    assert_eq!(g.record_api_key(&key, &answer, NOW, i64::MAX), NOW + 30);
    if let Verdict::Valid(k) = &mut answer.verdict {
        k.expires_at = Some(NOW + 5);
    }
    assert_eq!(g.record_api_key(&key, &answer, NOW, i64::MAX), NOW + 5);
    assert_eq!(g.record_api_key(&key, &answer, NOW, NOW + 2), NOW + 2);
}

#[test]
fn an_unseen_key_while_the_service_is_unreachable_is_503() {
    let mut g = gate();
    let r = refused(g.decide_head(&with_key("/mcp/keys", &api_key()), &PureRust, false));
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Whatever bytes arrive, the gate answers; it never panics (a panic kills the VM).
    #[test]
    fn any_request_gets_an_answer(
        method in prop::sample::select(vec![&b"GET"[..], b"POST", b"DELETE", b"PUT", b"OPTIONS"]),
        path in "(/mcp/(demo|other|tools|x)?)?[ -~]{0,40}",
        auth in prop::option::of(prop::collection::vec(any::<u8>(), 0..200)),
        key in prop::option::of(prop::collection::vec(any::<u8>(), 0..60)),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut g = gate();
        let head = Head { method, path: &path, authorization: auth.as_deref(), api_key: key.as_deref(), now: NOW };
        if let HeadVerdict::ReadBody(grant) = g.decide_head(&head, &PureRust, true) {
            let _ = g.decide_body(&grant, &body);
        }
    }

    #[test]
    fn any_body_from_a_read_token_gets_an_answer(body in ".{0,400}") {
        let mut g = gate();
        let token = sign(&claims("demo", "mcp:read"));
        let head = post("/mcp/demo", Some(&bearer(&token)));
        if let HeadVerdict::ReadBody(grant) = g.decide_head(&head, &PureRust, true) {
            let verdict = g.decide_body(&grant, body.as_bytes());
            if let Err(r) = verdict {
                prop_assert!(matches!(r.status, 400 | 403));
            }
        }
    }
}

#[test]
fn a_path_that_was_not_utf8_fails_closed() {
    // The shell reads `:path` lossily: a byte that is not UTF-8 becomes U+FFFD,
    // which names no instance, so an MCP path is refused, never passed on.
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:read mcp:write"));
    let lossy = String::from_utf8_lossy(b"/mcp/demo\xff").into_owned();
    let r = refused(g.decide_head(&post(&lossy, Some(&bearer(&token))), &PureRust, true));
    assert_eq!(r.status, 404);
    assert_eq!(g.tally.get(Counter::DeniedNotFound), 1);
}

#[test]
fn headers_the_host_garbled_are_refused_not_passed() {
    let mut g = gate();
    let r = refused(g.unreadable_request());
    assert_eq!((r.status, error_of(&r).as_str()), (400, "invalid_request"));
    assert_eq!(g.tally.get(Counter::DeniedBadRequest), 1);
}

#[test]
fn every_request_with_a_cached_token_shares_one_identity() {
    // The identity is built when the token is verified and shared after: the
    // hot path copies no claim and renders no header value.
    let mut g = gate();
    let token = sign(&claims("demo", "mcp:read mcp:write"));
    let head = post("/mcp/demo", Some(&bearer(&token)));
    let first = granted(g.decide_head(&head, &PureRust, true));
    let second = granted(g.decide_head(&head, &PureRust, true));
    assert!(std::rc::Rc::ptr_eq(&first.identity, &second.identity));
    assert_eq!(g.tally.get(Counter::CacheHit), 1);
    let other = granted(g.decide_head(
        &post("/mcp/other", Some(&bearer(&sign(&claims("other", "mcp:write"))))),
        &PureRust,
        true,
    ));
    assert!(!std::rc::Rc::ptr_eq(&first.identity, &other.identity));
}
