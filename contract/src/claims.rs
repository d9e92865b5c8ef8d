//! Claims of a Sekisho access token (RFC 9068 JWT profile) and their validation.
//!
//! The service writes these; the filter (and the service's introspection
//! endpoint) check them with [`Expectations`].

use serde::{Deserialize, Serialize};

use crate::scope::{ScopeError, ScopeSet};

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, resource: &str) -> bool {
        match self {
            Audience::One(a) => a == resource,
            Audience::Many(all) => all.iter().any(|a| a == resource),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(all) => all,
        };
        slice.iter().map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> Result<ScopeSet, ScopeError> {
        ScopeSet::parse(&self.scope)
    }
}

/// What a token must satisfy where it is presented.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// The canonical resource URI of the instance the request addresses.
    pub audience: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
    /// Allowed clock difference, in seconds, for `exp` and `nbf`.
    pub leeway: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued by another issuer")]
    WrongIssuer,
    #[error("token is not meant for this resource")]
    WrongAudience,
    #[error("token has a malformed scope claim")]
    BadScope,
}

impl Expectations<'_> {
    /// Every check, for a token seen for the first time.
    pub fn check(&self, claims: &AccessTokenClaims) -> Result<(), ClaimsError> {
        if claims.iss != self.issuer {
            return Err(ClaimsError::WrongIssuer);
        }
        claims.scopes().map_err(|_| ClaimsError::BadScope)?;
        self.check_audience_and_time(claims)
    }

    /// The checks that depend on where and when a token is presented; enough
    /// for a token whose signature, issuer and scope were checked before.
    pub fn check_audience_and_time(&self, claims: &AccessTokenClaims) -> Result<(), ClaimsError> {
        if !claims.aud.contains(self.audience) {
            return Err(ClaimsError::WrongAudience);
        }
        if self.now >= claims.exp.saturating_add(self.leeway) {
            return Err(ClaimsError::Expired);
        }
        // A token "issued" in the future is as suspicious as one not valid yet.
        let not_before = claims.nbf.unwrap_or(claims.iat);
        if self.now.saturating_add(self.leeway) < not_before {
            return Err(ClaimsError::NotYetValid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "http://127.0.0.1:8080".into(),
            sub: "user-1".into(),
            aud: Audience::One("http://127.0.0.1:8080/mcp/demo".into()),
            exp: 1_000,
            iat: 100,
            nbf: None,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "mcp:read".into(),
        }
    }

    fn expect(now: i64) -> Expectations<'static> {
        Expectations { issuer: "http://127.0.0.1:8080", audience: "http://127.0.0.1:8080/mcp/demo", now, leeway: 30 }
    }

    #[test]
    fn accepts_a_token_inside_its_lifetime_with_leeway() {
        assert_eq!(expect(500).check(&claims()), Ok(()));
        assert_eq!(expect(1_029).check(&claims()), Ok(()));
        assert_eq!(expect(71).check(&claims()), Ok(()));
    }

    #[test]
    fn refuses_expired_early_wrong_issuer_and_wrong_audience() {
        assert_eq!(expect(1_030).check(&claims()), Err(ClaimsError::Expired));
        assert_eq!(expect(69).check(&claims()), Err(ClaimsError::NotYetValid));
        let mut c = claims();
        c.nbf = Some(600);
        assert_eq!(expect(500).check(&c), Err(ClaimsError::NotYetValid));
        let mut c = claims();
        c.iss = "http://127.0.0.1:8080/".into();
        assert_eq!(expect(500).check(&c), Err(ClaimsError::WrongIssuer));
        let mut c = claims();
        c.aud = Audience::Many(vec!["http://127.0.0.1:8080/mcp/other".into()]);
        assert_eq!(expect(500).check(&c), Err(ClaimsError::WrongAudience));
        let mut c = claims();
        c.scope = "mcp:read \"".into();
        assert_eq!(expect(500).check(&c), Err(ClaimsError::BadScope));
    }

    #[test]
    fn audience_may_be_an_array() {
        let mut c = claims();
        c.aud = Audience::Many(vec!["x".into(), "http://127.0.0.1:8080/mcp/demo".into()]);
        assert_eq!(expect(500).check(&c), Ok(()));
        let json = r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":1,"iat":0,"jti":"j","client_id":"c"}"#;
        let parsed: AccessTokenClaims = serde_json::from_str(json).unwrap();
        assert!(parsed.aud.contains("b") && parsed.scope.is_empty());
    }
}
