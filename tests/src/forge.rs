//! Hand-made access tokens for refusal scenarios: any header, any claims,
//! signed by a P-256 key the service never published — or not signed at all.
//! A forged token is well-formed unless a test makes it otherwise, so a
//! refusal can be pinned on the one thing the test changed.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sekisho_contract::jws;
use serde_json::{Value, json};

use crate::random;

pub struct Forger {
    key: SigningKey,
}

impl Forger {
    /// A forger with a fresh random key.
    pub fn new() -> Result<Forger> {
        // A random 32-byte string is a valid scalar except with negligible
        // probability; try again in that case.
        for _ in 0..8 {
            if let Ok(key) = SigningKey::from_slice(&random::bytes::<32>()?) {
                return Ok(Forger { key });
            }
        }
        Err(anyhow!("could not generate a P-256 key"))
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// A correct ES256 `at+jwt` (the contract's own signer) under `kid`, signed
    /// with this key: only the signature is wrong when `kid` is a real key id.
    pub fn sign_at_jwt(&self, claims: &Value, kid: &str) -> Result<String> {
        jws::sign_es256(claims, jws::ACCESS_TOKEN_TYP, kid, &self.key).map_err(|e| anyhow!("signing: {e}"))
    }

    /// `header` and `claims` exactly as given, with an ES256 signature by this key.
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!("{}.{}", b64_json(header), b64_json(claims));
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }
}

/// `header.claims.signature` with a signature part chosen by the caller
/// (`""` for `alg: none` tokens).
pub fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!("{}.{}.{signature}", b64_json(header), b64_json(claims))
}

/// Claims a real token for `instance` on the stack at `base_url` would carry,
/// valid for 15 minutes from now. Edit the result to break one of them.
pub fn claims(base_url: &str, instance: &str, scope: &str, sub: &str) -> Value {
    let now = now();
    json!({
        "iss": base_url,
        "sub": sub,
        "aud": format!("{base_url}/mcp/{instance}"),
        "exp": now + 900,
        "iat": now,
        "nbf": now,
        "jti": format!("forged-{now}-{}", random::hex_token().unwrap_or_default()),
        "client_id": crate::authz::TEST_CLIENT_ID,
        "scope": scope,
    })
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The `kid` of a token's header, to forge another token under a real key id.
pub fn kid_of(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    json.get("kid")?.as_str().map(str::to_owned)
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_tokens_parse_but_do_not_verify_under_another_key() {
        let forger = Forger::new().unwrap();
        let token = forger.sign_at_jwt(&claims("http://127.0.0.1:1", "demo", "mcp:read", "eve"), "k1").unwrap();
        let parsed = jws::parse(&token, jws::DEFAULT_MAX_TOKEN_BYTES, jws::ACCESS_TOKEN_TYP).unwrap();
        parsed.verify_with(forger.key().verifying_key()).unwrap();
        let other = Forger::new().unwrap();
        assert!(parsed.verify_with(other.key().verifying_key()).is_err());
        assert_eq!(kid_of(&token).as_deref(), Some("k1"));
    }

    #[test]
    fn raw_signing_keeps_the_header_as_given() {
        let forger = Forger::new().unwrap();
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": "k", "jku": "https://evil.example/jwks"});
        let token = forger.sign_raw(&header, &json!({"sub": "x"}));
        assert!(jws::parse(&token, jws::DEFAULT_MAX_TOKEN_BYTES, jws::ACCESS_TOKEN_TYP).is_err());
        assert!(unsigned(&json!({"alg": "none"}), &json!({}), "").ends_with('.'));
    }
}
