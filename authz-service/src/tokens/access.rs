//! Access tokens: RFC 9068 JWTs (`typ: at+jwt`), ES256, signed with the current key.
//!
//! The caller has already decided who gets what (subject, client, audience,
//! scope, lifetime) and checked it against the registry; this module turns the
//! decision into a signed token whose claims are `sekisho_contract`'s, which the
//! filter checks.

use std::fmt;

use sekisho_contract::claims::{AccessTokenClaims, Audience};
use sekisho_contract::jws::ACCESS_TOKEN_TYP;
use sekisho_contract::scope::{OFFLINE_ACCESS, ScopeSet};

use crate::crypto::random;
use crate::error::{Error, Result};
use crate::keys::KeyRing;

/// What to put in an access token.
#[derive(Debug, Clone)]
pub struct AccessTokenGrant<'a> {
    pub subject: &'a str,
    pub client_id: &'a str,
    /// Canonical resource URIs; at least one.
    pub audience: &'a [String],
    pub scope: &'a ScopeSet,
    /// Seconds.
    pub lifetime: i64,
}

/// A signed access token. `Debug` never prints the token itself.
#[derive(Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub jti: String,
    pub kid: String,
    pub scope: String,
    pub expires_in: i64,
    pub expires_at: i64,
}

impl fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("jti", &self.jti)
            .field("kid", &self.kid)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

pub fn issue_access_token(
    issuer: &str,
    keys: &KeyRing,
    grant: &AccessTokenGrant<'_>,
    now: i64,
) -> Result<IssuedAccessToken> {
    let aud = match grant.audience {
        [] => {
            return Err(Error::internal(anyhow::anyhow!("an access token needs an audience")));
        }
        [one] => Audience::One(one.clone()),
        many => Audience::Many(many.to_vec()),
    };
    if grant.lifetime <= 0 {
        return Err(Error::internal(anyhow::anyhow!("an access token needs a positive lifetime")));
    }
    // offline_access asks for a refresh token; it grants nothing at a resource.
    let scope = grant.scope.without(OFFLINE_ACCESS).to_string();
    let jti = random::identifier()?;
    let expires_at = now.saturating_add(grant.lifetime);
    let claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: grant.subject.to_owned(),
        aud,
        exp: expires_at,
        iat: now,
        nbf: Some(now),
        jti: jti.clone(),
        client_id: grant.client_id.to_owned(),
        scope: scope.clone(),
    };
    let signer = keys.signer();
    let token = signer.sign(&claims, ACCESS_TOKEN_TYP).map_err(Error::internal)?;
    Ok(IssuedAccessToken { token, jti, kid: signer.kid().to_owned(), scope, expires_in: grant.lifetime, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use sekisho_contract::claims::Expectations;
    use sekisho_contract::jws::{self, DEFAULT_MAX_TOKEN_BYTES};

    #[test]
    fn issues_a_verifiable_at_jwt_for_the_audience() {
        let ring = KeyRing::from_env(SigningKey::from_slice(&[4u8; 32]).unwrap());
        let audience = vec!["http://h:1/mcp/demo".to_owned()];
        let scope = ScopeSet::parse("mcp:read offline_access").unwrap();
        let grant =
            AccessTokenGrant { subject: "alice", client_id: "c1", audience: &audience, scope: &scope, lifetime: 60 };
        let issued = issue_access_token("http://h:1", &ring, &grant, 1_000).unwrap();
        assert_eq!(issued.scope, "mcp:read");
        assert!(!format!("{issued:?}").contains(&issued.token));

        let parsed = jws::parse(&issued.token, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).unwrap();
        assert_eq!(parsed.kid, ring.signer().kid());
        let key = ring.jwks().keys[0].verifying_key().unwrap();
        parsed.verify_with(&key).unwrap();
        let claims: AccessTokenClaims = parsed.claims().unwrap();
        let expect = Expectations { issuer: "http://h:1", audience: "http://h:1/mcp/demo", now: 1_010, leeway: 0 };
        assert_eq!(expect.check(&claims), Ok(()));
        assert_eq!((claims.exp, claims.nbf, claims.jti.len()), (1_060, Some(1_000), 22));
    }
}
