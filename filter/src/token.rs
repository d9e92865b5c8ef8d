//! Verifying a Bearer access token: header rules, key by `kid`, signature,
//! issuer and claims. Audience and time are checked per request by
//! [`crate::decision`], since a verified token is cached and reused.

use sekisho_contract::claims::{AccessTokenClaims, ClaimsError, Expectations};
use sekisho_contract::identity;
use sekisho_contract::jws::{self, JwsError};
use sekisho_contract::scope::ScopeSet;

use crate::keys::{Key, KeySet};

/// Checks an ES256 signature over `signing_input`. The filter uses Envoy's
/// native crypto where available; tests and fallbacks use pure Rust.
pub trait SignatureVerifier {
    fn verify(&self, key: &Key, signing_input: &[u8], signature: &[u8; 64]) -> bool;
}

/// Pure-Rust P-256 verification (RustCrypto `p256`).
pub struct PureRust;

impl SignatureVerifier for PureRust {
    fn verify(&self, key: &Key, signing_input: &[u8], signature: &[u8; 64]) -> bool {
        use p256::ecdsa::Signature;
        use p256::ecdsa::signature::Verifier;
        Signature::from_slice(signature).is_ok_and(|sig| key.verifying.verify(signing_input, &sig).is_ok())
    }
}

/// A token whose signature, issuer and claim formats were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub claims: AccessTokenClaims,
    pub scopes: ScopeSet,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Jws(JwsError),
    #[error("token is signed with an unknown key")]
    UnknownKey { kid: String },
    #[error("token signature is invalid")]
    BadSignature,
    #[error("{0}")]
    Claims(ClaimsError),
    #[error("token has been revoked")]
    Revoked,
}

impl TokenError {
    /// The reason as counted in stats and shown in `error_description`. Never
    /// contains anything taken from the token.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Jws(JwsError::TooLarge) => "token_too_large",
            TokenError::Jws(JwsError::AlgorithmNotAllowed) => "algorithm_not_allowed",
            TokenError::Jws(JwsError::EmbeddedKey | JwsError::CriticalExtension) => "header_not_allowed",
            TokenError::Jws(JwsError::WrongType) => "wrong_type",
            TokenError::Jws(JwsError::BadSignature) | TokenError::BadSignature => "bad_signature",
            TokenError::Jws(JwsError::BadClaims) => "bad_claims",
            TokenError::Jws(_) => "malformed",
            TokenError::UnknownKey { .. } => "unknown_key",
            TokenError::Claims(ClaimsError::Expired) => "expired",
            TokenError::Claims(ClaimsError::NotYetValid) => "not_yet_valid",
            TokenError::Claims(ClaimsError::WrongIssuer) => "wrong_issuer",
            TokenError::Claims(ClaimsError::WrongAudience) => "wrong_audience",
            TokenError::Claims(ClaimsError::BadScope) => "bad_claims",
            TokenError::Revoked => "revoked",
        }
    }
}

/// Verifies `token` completely for first sight at the resource in `expect`.
pub fn verify(
    token: &str,
    keys: &KeySet,
    verifier: &dyn SignatureVerifier,
    expect: &Expectations<'_>,
    max_len: usize,
) -> Result<VerifiedToken, TokenError> {
    let parsed = jws::parse(token, max_len, jws::ACCESS_TOKEN_TYP).map_err(TokenError::Jws)?;
    let key = keys.get(&parsed.kid).ok_or_else(|| TokenError::UnknownKey { kid: parsed.kid.clone() })?;
    if !verifier.verify(key, parsed.signing_input.as_bytes(), &parsed.signature) {
        return Err(TokenError::BadSignature);
    }
    let claims: AccessTokenClaims = parsed.claims().map_err(TokenError::Jws)?;
    expect.check(&claims).map_err(TokenError::Claims)?;
    // `sub` and `client_id` go upstream as header values (SPEC F6).
    if !identity::is_header_safe(&claims.sub) || !identity::is_header_safe(&claims.client_id) {
        return Err(TokenError::Jws(JwsError::BadClaims));
    }
    let scopes = claims.scopes().map_err(|_| TokenError::Claims(ClaimsError::BadScope))?;
    Ok(VerifiedToken { claims, scopes })
}
