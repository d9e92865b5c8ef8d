//! What we can say about a token we issued (RFC 7662), and the verification of
//! our own access tokens that introspection and revocation share.
//!
//! Access tokens are checked exactly as the filter checks them — the contract's
//! strict JWS parser, our published keys, issuer, lifetime — plus the
//! revocation list. Refresh tokens are found by their keyed hash; only the
//! client they were issued to learns about them. Anything else is simply
//! `{"active": false}`: the answer never says why.

use sekisho_contract::claims::{AccessTokenClaims, Audience};
use sekisho_contract::jws::{self, ACCESS_TOKEN_TYP, DEFAULT_MAX_TOKEN_BYTES};
use serde::Serialize;

use crate::app::App;
use crate::clients::Client;
use crate::crypto::secret_hash::Purpose;
use crate::error::Result;
use crate::storage::refresh_tokens;
use crate::time::now_unix;
use crate::tokens::revocation;

/// Clock difference tolerated for `nbf`, as the filter does.
const LEEWAY: i64 = 30;

/// RFC 7662 §2.2.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
}

/// The claims of `token` if it is an access token we issued that has not
/// expired (revocation not considered).
pub fn verify_access_token(app: &App, token: &str) -> Option<AccessTokenClaims> {
    let parsed = jws::parse(token, DEFAULT_MAX_TOKEN_BYTES, ACCESS_TOKEN_TYP).ok()?;
    let ring = app.keys.current();
    let jwk = ring.jwks().keys.iter().find(|k| k.kid.as_deref() == Some(parsed.kid.as_str()))?;
    let key = jwk.verifying_key().ok()?;
    parsed.verify_with(&key).ok()?;
    let claims: AccessTokenClaims = parsed.claims().ok()?;
    let now = now_unix();
    let fresh = claims.iss == app.issuer()
        && now < claims.exp
        && now + LEEWAY >= claims.nbf.unwrap_or(claims.iat)
        && claims.scopes().is_ok();
    fresh.then_some(claims)
}

/// Introspects `token` for `client` (authenticated, confidential).
pub async fn introspect(app: &App, client: &Client, token: &str) -> Result<Introspection> {
    if let Some(claims) = verify_access_token(app, token) {
        if revocation::is_revoked(&app.db, &claims.jti).await? {
            return Ok(Introspection::default());
        }
        return Ok(Introspection {
            active: true,
            scope: Some(claims.scope),
            client_id: Some(claims.client_id),
            sub: Some(claims.sub),
            aud: Some(claims.aud),
            iss: Some(claims.iss),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            nbf: claims.nbf,
            jti: Some(claims.jti),
            token_type: Some("Bearer"),
        });
    }
    let hash = app.hasher.hash(Purpose::REFRESH_TOKEN, token);
    let Some(row) = refresh_tokens::get_token(app.db.pool(), &hash).await? else {
        return Ok(Introspection::default());
    };
    let Some(family) = refresh_tokens::get_family(app.db.pool(), &row.family_id).await? else {
        return Ok(Introspection::default());
    };
    let live = row.rotated_at.is_none()
        && row.expires_at > now_unix()
        && family.revoked_at.is_none()
        && family.client_id == client.id;
    if !live {
        return Ok(Introspection::default());
    }
    Ok(Introspection {
        active: true,
        scope: Some(family.scope),
        client_id: Some(family.client_id),
        sub: Some(family.subject),
        aud: serde_json::from_str::<Vec<String>>(&family.resources).ok().map(Audience::Many),
        iss: Some(app.issuer().to_owned()),
        exp: Some(row.expires_at),
        iat: Some(row.created_at),
        token_type: Some("refresh_token"),
        ..Introspection::default()
    })
}
