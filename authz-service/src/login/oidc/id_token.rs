//! Verifying the provider's ID token (OpenID Connect Core §3.1.3.7).
//!
//! Separate from `sekisho_contract::jws`, which reads only our own ES256
//! access tokens: upstream ID tokens are RS256 (Auth0's default) or ES256.
//! The algorithm comes from an allow-list, never `none` or HMAC; the key is
//! found by `kid` in the provider's JWKS (and must suit the algorithm); then
//! `iss` (exact), `aud` (contains our client id; `azp` when several), `nonce`,
//! `exp` and `iat` (with leeway).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

/// Algorithms we verify.
pub const ALLOWED_ALGS: &[&str] = &["RS256", "ES256"];
/// Clock difference tolerated with the provider.
pub const LEEWAY_SECS: i64 = 60;
/// An ID token issued longer ago than this is refused (it is used at once).
pub const MAX_AGE_SECS: i64 = 10 * 60;
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the ID token's algorithm {0} is not allowed")]
    Algorithm(String),
    /// No key with this `kid`: refetch the JWKS once, then give up.
    #[error("no key in the provider's JWKS matches the ID token")]
    UnknownKey,
    #[error("the ID token's signature does not verify")]
    Signature,
    #[error("the ID token was issued by another issuer")]
    Issuer,
    #[error("the ID token is for another audience")]
    Audience,
    #[error("the ID token's nonce does not match this login")]
    Nonce,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token's issue time is not acceptable")]
    IssuedAt,
}

/// The claims we use.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(default)]
    pub aud: Audience,
    pub azp: Option<String>,
    pub exp: i64,
    pub iat: i64,
    pub nonce: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl Audience {
    fn values(&self) -> Vec<&str> {
        match self {
            Audience::One(a) => vec![a.as_str()],
            Audience::Many(v) => v.iter().map(String::as_str).collect(),
            Audience::None => vec![],
        }
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// What must match.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
}

/// A provider's JWKS as fetched: only what can verify RS256/ES256 is kept.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

#[derive(Debug, Clone)]
struct Key {
    kid: Option<String>,
    material: Material,
}

#[derive(Debug, Clone)]
enum Material {
    Rsa(rsa::RsaPublicKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl Material {
    fn alg(&self) -> &'static str {
        match self {
            Material::Rsa(_) => "RS256",
            Material::P256(_) => "ES256",
        }
    }
}

impl KeySet {
    /// Parses a JWKS document; keys of other types, curves, uses or
    /// algorithms are skipped, not errors.
    pub fn parse(document: &[u8]) -> Result<KeySet, &'static str> {
        let doc: Value = serde_json::from_slice(document).map_err(|_| "the JWKS is not JSON")?;
        let keys = doc.get("keys").and_then(Value::as_array).ok_or("the JWKS has no `keys` array")?;
        let str_of = |k: &Value, name: &str| k.get(name).and_then(Value::as_str).map(str::to_owned);
        let bytes_of = |k: &Value, name: &str| str_of(k, name).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        let mut out = Vec::new();
        for k in keys {
            if str_of(k, "use").is_some_and(|u| u != "sig") {
                continue;
            }
            let material = match str_of(k, "kty").as_deref() {
                Some("RSA") => {
                    let (Some(n), Some(e)) = (bytes_of(k, "n"), bytes_of(k, "e")) else { continue };
                    let n = rsa::BigUint::from_bytes_be(&n);
                    let e = rsa::BigUint::from_bytes_be(&e);
                    match rsa::RsaPublicKey::new(n, e) {
                        Ok(key) if rsa::traits::PublicKeyParts::size(&key) * 8 >= MIN_RSA_BITS => Material::Rsa(key),
                        _ => continue,
                    }
                }
                Some("EC") if str_of(k, "crv").as_deref() == Some("P-256") => {
                    let (Some(x), Some(y)) = (bytes_of(k, "x"), bytes_of(k, "y")) else { continue };
                    if x.len() != 32 || y.len() != 32 {
                        continue;
                    }
                    let sec1 = [&[0x04][..], &x, &y].concat();
                    match p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1) {
                        Ok(key) => Material::P256(key),
                        Err(_) => continue,
                    }
                }
                _ => continue,
            };
            if str_of(k, "alg").is_some_and(|a| a != material.alg()) {
                continue;
            }
            out.push(Key { kid: str_of(k, "kid"), material });
        }
        Ok(KeySet { keys: out })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The `kid` (if any) and the allowed `alg` of a token, before verifying.
pub fn peek(token: &str) -> Result<(Option<String>, String), IdTokenError> {
    let header = token.split('.').next().ok_or(IdTokenError::Malformed("no header"))?;
    let header: Header = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(IdTokenError::Malformed("unreadable header"))?;
    if header.crit.is_some() {
        return Err(IdTokenError::Malformed("critical header parameters are not supported"));
    }
    if !ALLOWED_ALGS.contains(&header.alg.as_str()) {
        return Err(IdTokenError::Algorithm(header.alg));
    }
    Ok((header.kid, header.alg))
}

/// Verifies `token` with `keys` against `expected`.
pub fn verify(token: &str, keys: &KeySet, expected: &Expected<'_>) -> Result<Claims, IdTokenError> {
    let (kid, alg) = peek(token)?;
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed("not a compact JWS"));
    };
    let signing_input = &token[..header.len() + 1 + payload.len()];
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| IdTokenError::Malformed("signature encoding"))?;
    let candidates: Vec<&Key> =
        keys.keys.iter().filter(|k| k.material.alg() == alg && (kid.is_none() || k.kid == kid)).collect();
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey);
    }
    if !candidates.iter().any(|k| verifies(&k.material, signing_input.as_bytes(), &signature)) {
        return Err(IdTokenError::Signature);
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(IdTokenError::Malformed("unreadable claims"))?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

fn verifies(key: &Material, message: &[u8], signature: &[u8]) -> bool {
    use rsa::signature::Verifier;
    match key {
        Material::Rsa(key) => {
            let verifier = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key.clone());
            rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|s| verifier.verify(message, &s).is_ok())
        }
        Material::P256(key) => {
            p256::ecdsa::Signature::from_slice(signature).is_ok_and(|s| key.verify(message, &s).is_ok())
        }
    }
}

fn check_claims(claims: &Claims, expected: &Expected<'_>) -> Result<(), IdTokenError> {
    if claims.iss != expected.issuer {
        return Err(IdTokenError::Issuer);
    }
    let audiences = claims.aud.values();
    if !audiences.contains(&expected.client_id) {
        return Err(IdTokenError::Audience);
    }
    if (audiences.len() > 1 || claims.azp.is_some()) && claims.azp.as_deref() != Some(expected.client_id) {
        return Err(IdTokenError::Audience);
    }
    let nonce_ok = claims
        .nonce
        .as_deref()
        .is_some_and(|n| crate::crypto::compare::secrets_equal(n.as_bytes(), expected.nonce.as_bytes()));
    if !nonce_ok {
        return Err(IdTokenError::Nonce);
    }
    if claims.exp + LEEWAY_SECS <= expected.now {
        return Err(IdTokenError::Expired);
    }
    if claims.iat > expected.now + LEEWAY_SECS || claims.iat < expected.now - MAX_AGE_SECS {
        return Err(IdTokenError::IssuedAt);
    }
    // The subject becomes the access token's `sub`, which the filter hands
    // upstream as a header: refuse here what the filter would refuse there.
    if claims.sub.is_empty() || claims.sub.len() > 255 || !sekisho_contract::identity::is_header_safe(&claims.sub) {
        return Err(IdTokenError::Malformed("sub"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn jwks(kid: &str) -> KeySet {
        let point = key().verifying_key().to_encoded_point(false);
        let doc = json!({ "keys": [
            { "kty": "oct", "k": "AAAA" },
            { "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
              "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()) }
        ]});
        KeySet::parse(doc.to_string().as_bytes()).unwrap()
    }

    fn sign(header: Value, claims: Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig: p256::ecdsa::Signature = key().sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    fn claims() -> Value {
        json!({ "iss": "https://idp.example/", "sub": "auth0|42", "aud": "sekisho", "exp": NOW + 300,
                "iat": NOW - 5, "nonce": "n0nce", "email": "a@example.com" })
    }

    fn expected() -> Expected<'static> {
        Expected { issuer: "https://idp.example/", client_id: "sekisho", nonce: "n0nce", now: NOW }
    }

    fn with(change: &[(&str, Value)]) -> Value {
        let mut c = claims();
        for (k, v) in change {
            c[*k] = v.clone();
        }
        c
    }

    fn check(claims: Value) -> Result<Claims, IdTokenError> {
        verify(&sign(json!({ "alg": "ES256", "kid": "k1" }), claims), &jwks("k1"), &expected())
    }

    #[test]
    fn a_good_token_verifies() {
        let c = check(claims()).unwrap();
        assert_eq!((c.sub.as_str(), c.email.as_deref()), ("auth0|42", Some("a@example.com")));
        assert_eq!(jwks("k1").len(), 1);
    }

    #[test]
    fn every_claim_is_checked() {
        assert_eq!(check(with(&[("iss", json!("https://evil.example/"))])).unwrap_err(), IdTokenError::Issuer);
        assert_eq!(check(with(&[("aud", json!("other"))])).unwrap_err(), IdTokenError::Audience);
        assert_eq!(check(with(&[("aud", json!(["sekisho", "other"]))])).unwrap_err(), IdTokenError::Audience);
        assert!(check(with(&[("aud", json!(["sekisho", "other"])), ("azp", json!("sekisho"))])).is_ok());
        assert_eq!(check(with(&[("nonce", json!("other"))])).unwrap_err(), IdTokenError::Nonce);
        assert_eq!(check(with(&[("nonce", Value::Null)])).unwrap_err(), IdTokenError::Nonce);
        assert_eq!(check(with(&[("exp", json!(NOW - 61))])).unwrap_err(), IdTokenError::Expired);
        assert!(check(with(&[("exp", json!(NOW - 30))])).is_ok());
        assert_eq!(check(with(&[("iat", json!(NOW + 120))])).unwrap_err(), IdTokenError::IssuedAt);
        assert_eq!(check(with(&[("iat", json!(NOW - 3600))])).unwrap_err(), IdTokenError::IssuedAt);
        for sub in ["", "auth0|42\r\nx-sekisho-subject: admin", "auth0|\u{7f}", &"a".repeat(256)] {
            assert_eq!(check(with(&[("sub", json!(sub))])).unwrap_err(), IdTokenError::Malformed("sub"), "{sub:?}");
        }
        assert!(check(with(&[("sub", json!("auth0|42 Jöhn\tDoe"))])).is_ok());
    }

    #[test]
    fn algorithm_key_and_signature_are_checked() {
        let token = sign(json!({ "alg": "ES256", "kid": "k1" }), claims());
        assert_eq!(verify(&token, &jwks("k2"), &expected()).unwrap_err(), IdTokenError::UnknownKey);
        let none = sign(json!({ "alg": "none", "kid": "k1" }), claims());
        assert!(matches!(verify(&none, &jwks("k1"), &expected()), Err(IdTokenError::Algorithm(_))));
        let hs = sign(json!({ "alg": "HS256", "kid": "k1" }), claims());
        assert!(matches!(verify(&hs, &jwks("k1"), &expected()), Err(IdTokenError::Algorithm(_))));
        // RS256 header with only an EC key: no candidate key.
        let rs = sign(json!({ "alg": "RS256", "kid": "k1" }), claims());
        assert_eq!(verify(&rs, &jwks("k1"), &expected()).unwrap_err(), IdTokenError::UnknownKey);
        // Claims swapped after signing.
        let (head, _) = token.rsplit_once('.').unwrap();
        let (h, _) = head.split_once('.').unwrap();
        let forged = format!(
            "{h}.{}.{}",
            URL_SAFE_NO_PAD.encode(with(&[("sub", json!("admin"))]).to_string()),
            token.rsplit('.').next().unwrap()
        );
        assert_eq!(verify(&forged, &jwks("k1"), &expected()).unwrap_err(), IdTokenError::Signature);
    }
}
