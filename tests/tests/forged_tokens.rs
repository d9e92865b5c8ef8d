//! Tokens the service never issued, or issued for another time or place, are
//! refused by the filter in real Envoy with `401 invalid_token` and a challenge
//! that leads back to the metadata (SPEC F1, F4).
//!
//! The stack's service signs with a key this test made (`JWT_PRIVATE_KEY`), so
//! a token can be correctly signed and still wrong in exactly one claim.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use sekisho_contract::jwk::thumbprint;
use sekisho_contract::jws;
use sekisho_e2e::forge::{self, Forger};
use sekisho_e2e::{Stack, StackOptions, mcp};
use serde_json::{Value, json};

struct Case {
    what: &'static str,
    token: String,
}

fn service_key() -> SigningKey {
    Forger::new().unwrap().key().clone()
}

fn sign(key: &SigningKey, claims: &Value, kid: &str) -> String {
    jws::sign_es256(claims, jws::ACCESS_TOKEN_TYP, kid, key).unwrap()
}

#[test]
fn every_kind_of_bad_token_is_refused_as_an_invalid_token() {
    let key = service_key();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let options = StackOptions { authz_env: vec![("JWT_PRIVATE_KEY".into(), pem)], ..StackOptions::default() };
    let stack = Stack::start(options).expect("the stack starts");
    let base = stack.base_url().to_owned();
    let kid = thumbprint(key.verifying_key());
    let good = forge::claims(&base, "demo", "mcp:read mcp:write", "alice");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        c
    };
    let now = forge::now();

    // The control: the same key and claims are accepted, so each refusal below
    // is about the one thing changed.
    let control = stack.mcp_post("/mcp/demo", Some(&sign(&key, &good, &kid)), &mcp::initialize_request(1)).unwrap();
    assert_eq!(control.status, 200, "a correctly signed token must pass: {}", control.body);

    let public_pem = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
    let hs256 = {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(good.to_string());
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(public_pem.as_bytes()).unwrap();
        mac.update(format!("{header}.{payload}").as_bytes());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    };
    let cases = [
        Case { what: "expired", token: sign(&key, &with(&|c| c["exp"] = json!(now - 120)), &kid) },
        Case { what: "not yet valid", token: sign(&key, &with(&|c| c["nbf"] = json!(now + 600)), &kid) },
        Case { what: "wrong issuer", token: sign(&key, &with(&|c| c["iss"] = json!(format!("{base}/"))), &kid) },
        Case { what: "wrong signature", token: Forger::new().unwrap().sign_at_jwt(&good, &kid).unwrap() },
        Case {
            what: "alg none",
            token: forge::unsigned(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}), &good, ""),
        },
        Case { what: "HS256 keyed with the public key", token: hs256 },
        Case { what: "unknown kid", token: sign(&key, &good, "no-such-key") },
        Case {
            what: "embedded jwk",
            token: Forger::new()
                .unwrap()
                .sign_raw(&json!({"alg": "ES256", "typ": "at+jwt", "kid": kid, "jwk": {"kty": "EC"}}), &good),
        },
        Case {
            what: "not an at+jwt",
            token: {
                let header = json!({"alg": "ES256", "typ": "JWT", "kid": kid});
                let input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(good.to_string())
                );
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
                format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
            },
        },
        Case { what: "garbage", token: "this.is.garbage".into() },
        Case { what: "oversized", token: format!("{}.{}.{}", "a".repeat(9_000), "b", "c") },
    ];
    for case in cases {
        let response = stack.mcp_post("/mcp/demo", Some(&case.token), &mcp::initialize_request(1)).unwrap();
        assert_eq!(response.status, 401, "{}: {}", case.what, response.body);
        let challenge = response.www_authenticate().unwrap_or_default().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{}: {challenge}", case.what);
        assert!(
            challenge.contains(&format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource/mcp/demo\"")),
            "{}: {challenge}",
            case.what
        );
        let body: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(body["error"], "invalid_token", "{}", case.what);
    }
}
