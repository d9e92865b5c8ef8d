//! PKCE (RFC 7636), S256 only: OAuth 2.1 and every MCP spec version require
//! it, and `plain` would hand the verifier to anyone who sees the request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::crypto::compare::secrets_equal;
use crate::error::{Error, Result};

pub const S256: &str = "S256";

/// Checks the `code_challenge` and `code_challenge_method` of an authorization request.
pub fn check_challenge(challenge: Option<&str>, method: Option<&str>) -> Result<String> {
    let challenge = challenge.ok_or_else(|| {
        Error::invalid_request("PKCE is required: send code_challenge and code_challenge_method=S256")
    })?;
    match method {
        Some(S256) => {}
        // RFC 7636 §4.3: an absent method means plain.
        None | Some("plain") => {
            return Err(Error::invalid_request("code_challenge_method must be S256; plain is not supported"));
        }
        Some(other) => {
            return Err(Error::invalid_request(format!("code_challenge_method `{other}` is not supported; use S256")));
        }
    }
    // BASE64URL(SHA-256(verifier)) is always 43 characters.
    if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
        return Err(Error::invalid_request(
            "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)",
        ));
    }
    Ok(challenge.to_owned())
}

/// Whether `verifier` (from the token request) is the one behind `challenge`.
pub fn verify(verifier: &str, challenge: &str) -> Result<bool> {
    // RFC 7636 §4.1: 43 to 128 unreserved characters.
    if !(43..=128).contains(&verifier.len()) || !verifier.bytes().all(is_unreserved) {
        return Err(Error::invalid_request(
            "code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, -, ., _ and ~",
        ));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    Ok(secrets_equal(computed.as_bytes(), challenge.as_bytes()))
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_example_verifies() {
        assert_eq!(check_challenge(Some(CHALLENGE), Some("S256")).unwrap(), CHALLENGE);
        assert!(verify(VERIFIER, CHALLENGE).unwrap());
        let other = VERIFIER.replace('d', "e");
        assert!(!verify(&other, CHALLENGE).unwrap());
    }

    #[test]
    fn plain_missing_and_malformed_are_refused() {
        assert!(check_challenge(None, Some("S256")).is_err());
        assert!(check_challenge(Some(CHALLENGE), None).is_err());
        assert!(check_challenge(Some(CHALLENGE), Some("plain")).is_err());
        assert!(check_challenge(Some(CHALLENGE), Some("s256")).is_err());
        assert!(check_challenge(Some("short"), Some("S256")).is_err());
        assert!(verify("short", CHALLENGE).is_err());
        assert!(verify(&"a".repeat(129), CHALLENGE).is_err());
        assert!(verify(&format!("{VERIFIER}!"), CHALLENGE).is_err());
    }
}
