//! Compact JWS (RFC 7515) as Sekisho uses it: ES256 only, `typ: at+jwt`, a `kid`.
//!
//! Parsing is strict on purpose: the header is checked before any key is looked
//! up, and everything RFC 8725 warns about is refused outright — `alg: none`,
//! symmetric algorithms (the "HS256 signed with the public key" attack), keys
//! carried or referenced by the token itself (`jwk`, `jku`, `x5u`, `x5c`) and
//! `crit` extensions (we understand none).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub const ES256: &str = "ES256";
/// RFC 9068 §2.1.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Tokens longer than this are refused before any decoding. Ours are ~600 bytes.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
/// r ‖ s, 32 bytes each (RFC 7518 §3.4).
pub const ES256_SIGNATURE_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("token is too large")]
    TooLarge,
    #[error("token is not a compact JWS")]
    Malformed,
    #[error("token is not valid base64url")]
    BadEncoding,
    #[error("token header is not valid JSON")]
    BadHeader,
    #[error("token algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("token carries or references its own key")]
    EmbeddedKey,
    #[error("token has critical extensions")]
    CriticalExtension,
    #[error("token type is not at+jwt")]
    WrongType,
    #[error("token has no key id")]
    MissingKeyId,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token claims are not valid JSON")]
    BadClaims,
    #[error("the signing key could not sign")]
    SigningFailed,
}

#[derive(Debug, Deserialize)]
struct RawHeader {
    alg: Option<String>,
    typ: Option<String>,
    kid: Option<String>,
    jku: Option<serde_json::Value>,
    x5u: Option<serde_json::Value>,
    x5c: Option<serde_json::Value>,
    jwk: Option<serde_json::Value>,
    crit: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// A compact JWS whose header passed every check; the signature is not verified yet.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub kid: String,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the signed bytes.
    pub signing_input: &'a str,
    payload_b64: &'a str,
    /// Raw r ‖ s.
    pub signature: [u8; ES256_SIGNATURE_BYTES],
}

/// Splits and checks a compact JWS. `expected_typ` is compared case-insensitively
/// and with an optional `application/` prefix (RFC 7515 §4.1.9).
pub fn parse<'a>(token: &'a str, max_len: usize, expected_typ: &str) -> Result<Parsed<'a>, JwsError> {
    if token.len() > max_len {
        return Err(JwsError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(JwsError::Malformed);
    }
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).map_err(|_| JwsError::BadEncoding)?;
    let header: RawHeader = serde_json::from_slice(&header_json).map_err(|_| JwsError::BadHeader)?;
    if header.alg.as_deref() != Some(ES256) {
        return Err(JwsError::AlgorithmNotAllowed);
    }
    if header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some() || header.jwk.is_some() {
        return Err(JwsError::EmbeddedKey);
    }
    if header.crit.is_some() {
        return Err(JwsError::CriticalExtension);
    }
    if !typ_matches(header.typ.as_deref(), expected_typ) {
        return Err(JwsError::WrongType);
    }
    let kid = header.kid.filter(|k| !k.is_empty()).ok_or(JwsError::MissingKeyId)?;
    let mut signature = [0u8; ES256_SIGNATURE_BYTES];
    // The base64 of 64 bytes is 86 characters; checking first keeps decode_slice
    // from ever seeing an oversized input.
    if signature_b64.len() != 86 {
        return Err(JwsError::BadSignature);
    }
    let n = URL_SAFE_NO_PAD.decode_slice(signature_b64, &mut signature).map_err(|_| JwsError::BadEncoding)?;
    if n != ES256_SIGNATURE_BYTES {
        return Err(JwsError::BadSignature);
    }
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    Ok(Parsed { kid, signing_input, payload_b64, signature })
}

fn typ_matches(typ: Option<&str>, expected: &str) -> bool {
    let Some(typ) = typ else { return false };
    let typ = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &typ[12..],
        _ => typ,
    };
    typ.eq_ignore_ascii_case(expected)
}

impl Parsed<'_> {
    /// Verifies the signature with pure-Rust P-256. The filter may verify
    /// `signing_input`/`signature` by other means (Envoy's crypto) instead.
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<(), JwsError> {
        let sig = Signature::from_slice(&self.signature).map_err(|_| JwsError::BadSignature)?;
        key.verify(self.signing_input.as_bytes(), &sig).map_err(|_| JwsError::BadSignature)
    }

    /// Decodes the payload. Call only after the signature has been verified.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, JwsError> {
        let json = URL_SAFE_NO_PAD.decode(self.payload_b64).map_err(|_| JwsError::BadEncoding)?;
        serde_json::from_slice(&json).map_err(|_| JwsError::BadClaims)
    }
}

/// Signs `claims` as a compact JWS with ES256 under `kid`.
pub fn sign_es256<T: Serialize>(claims: &T, typ: &str, kid: &str, key: &SigningKey) -> Result<String, JwsError> {
    sign_es256_with(claims, typ, kid, |signing_input| {
        let signature: Signature = key.sign(signing_input);
        let mut raw = [0u8; ES256_SIGNATURE_BYTES];
        raw.copy_from_slice(&signature.to_bytes());
        Some(raw)
    })
}

/// A compact JWS of `claims` whose signature `sign` makes: the ES256 `r ‖ s`
/// of the signing input it is given, or `None` if it cannot. For signers
/// outside this crate (the service signs with a faster implementation); the
/// token's shape stays defined here.
pub fn sign_es256_with<T: Serialize>(
    claims: &T,
    typ: &str,
    kid: &str,
    sign: impl FnOnce(&[u8]) -> Option<[u8; ES256_SIGNATURE_BYTES]>,
) -> Result<String, JwsError> {
    let header = serde_json::to_vec(&HeaderOut { alg: ES256, typ, kid }).map_err(|_| JwsError::BadHeader)?;
    let payload = serde_json::to_vec(claims).map_err(|_| JwsError::BadClaims)?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = sign(token.as_bytes()).ok_or(JwsError::SigningFailed)?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    fn b64(v: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap())
    }

    fn with_header(header: serde_json::Value) -> String {
        format!("{}.{}.{}", b64(header), b64(json!({"sub": "x"})), "A".repeat(86))
    }

    #[test]
    fn round_trip_sign_parse_verify() {
        let token = sign_es256(&json!({"sub": "alice"}), ACCESS_TOKEN_TYP, "k1", &key()).unwrap();
        let parsed = parse(&token, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).unwrap();
        assert_eq!(parsed.kid, "k1");
        parsed.verify_with(key().verifying_key()).unwrap();
        let claims: serde_json::Value = parsed.claims().unwrap();
        assert_eq!(claims["sub"], "alice");
    }

    #[test]
    fn a_changed_payload_fails_verification() {
        let token = sign_es256(&json!({"sub": "alice"}), ACCESS_TOKEN_TYP, "k1", &key()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(json!({"sub": "mallory"}));
        parts[1] = &forged;
        let forged = parts.join(".");
        let parsed = parse(&forged, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).unwrap();
        assert_eq!(parsed.verify_with(key().verifying_key()), Err(JwsError::BadSignature));
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let parsed = parse(&token, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).unwrap();
        assert_eq!(parsed.verify_with(other.verifying_key()), Err(JwsError::BadSignature));
    }

    #[test]
    fn refuses_dangerous_headers() {
        let cases = [
            (json!({"alg": "none", "typ": "at+jwt", "kid": "k"}), JwsError::AlgorithmNotAllowed),
            (json!({"alg": "HS256", "typ": "at+jwt", "kid": "k"}), JwsError::AlgorithmNotAllowed),
            (json!({"alg": "es256", "typ": "at+jwt", "kid": "k"}), JwsError::AlgorithmNotAllowed),
            (json!({"typ": "at+jwt", "kid": "k"}), JwsError::AlgorithmNotAllowed),
            (json!({"alg": "ES256", "typ": "at+jwt", "kid": "k", "jku": "https://evil"}), JwsError::EmbeddedKey),
            (json!({"alg": "ES256", "typ": "at+jwt", "kid": "k", "x5u": "https://evil"}), JwsError::EmbeddedKey),
            (json!({"alg": "ES256", "typ": "at+jwt", "kid": "k", "jwk": {"kty": "EC"}}), JwsError::EmbeddedKey),
            (json!({"alg": "ES256", "typ": "at+jwt", "kid": "k", "x5c": ["MII"]}), JwsError::EmbeddedKey),
            (json!({"alg": "ES256", "typ": "at+jwt", "kid": "k", "crit": ["exp"]}), JwsError::CriticalExtension),
            (json!({"alg": "ES256", "typ": "JWT", "kid": "k"}), JwsError::WrongType),
            (json!({"alg": "ES256", "kid": "k"}), JwsError::WrongType),
            (json!({"alg": "ES256", "typ": "at+jwt"}), JwsError::MissingKeyId),
            (json!({"alg": "ES256", "typ": "at+jwt", "kid": ""}), JwsError::MissingKeyId),
        ];
        for (header, expected) in cases {
            let token = with_header(header.clone());
            assert_eq!(parse(&token, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).err(), Some(expected), "{header}");
        }
    }

    #[test]
    fn accepts_the_media_type_spelling_of_typ() {
        let token = with_header(json!({"alg": "ES256", "typ": "application/AT+JWT", "kid": "k"}));
        assert!(parse(&token, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).is_ok());
    }

    #[test]
    fn refuses_malformed_and_oversized_input() {
        let max = DEFAULT_MAX_TOKEN_BYTES;
        for bad in ["", ".", "..", "a.b", "a.b.c.d", "!!!.b.c", "e30.e30.c"] {
            assert!(parse(bad, max, ACCESS_TOKEN_TYP).is_err(), "{bad}");
        }
        assert_eq!(parse(&"a".repeat(max + 1), max, ACCESS_TOKEN_TYP).err(), Some(JwsError::TooLarge));
        let padded = with_header(json!({"alg": "ES256", "typ": "at+jwt", "kid": "k"}))
            .replace(&"A".repeat(86), &format!("{}==", "A".repeat(84)));
        assert!(parse(&padded, max, ACCESS_TOKEN_TYP).is_err());
    }
}
