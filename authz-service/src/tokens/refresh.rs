//! Refresh tokens (SPEC A7): opaque random strings, stored only as keyed
//! hashes, grouped in families. Every authorization that yields a refresh token
//! starts a family; every rotation adds a member and spends the old one; reuse
//! of a spent member revokes the family and the access tokens issued with its
//! members (RFC 9700 §4.14.2). The rules of the grant are in
//! `crate::grants::refresh_token`; this module only writes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sqlx::AnyConnection;

use crate::crypto::random;
use crate::crypto::secret_hash::{Purpose, SecretHasher};
use crate::error::{Error, Result};
use crate::storage::refresh_tokens::{self, FamilyRow, TokenRow};
use crate::tokens::revocation;

/// The access token issued together with a refresh token.
#[derive(Debug, Clone, Copy)]
pub struct IssuedWith<'a> {
    pub jti: &'a str,
    pub exp: i64,
}

/// What a new family holds.
#[derive(Debug, Clone)]
pub struct FamilyGrant<'a> {
    pub client_id: &'a str,
    pub subject: &'a str,
    /// Canonical resource URIs.
    pub resources: &'a [String],
    pub scope: &'a str,
}

/// A refresh token just made. `Debug` never shows the token.
pub struct NewRefreshToken {
    pub token: String,
    pub family_id: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRefreshToken")
            .field("family_id", &self.family_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Starts a family with its first token.
pub async fn start_family(
    conn: &mut AnyConnection,
    hasher: &SecretHasher,
    grant: &FamilyGrant<'_>,
    access: IssuedWith<'_>,
    now: i64,
    ttl: i64,
) -> Result<NewRefreshToken> {
    let family_id = random::identifier()?;
    let resources = serde_json::to_string(grant.resources).map_err(Error::internal)?;
    refresh_tokens::insert_family(
        conn,
        &FamilyRow {
            id: family_id.clone(),
            client_id: grant.client_id.to_owned(),
            subject: grant.subject.to_owned(),
            resources,
            scope: grant.scope.to_owned(),
            created_at: now,
            revoked_at: None,
            revoked_reason: None,
        },
    )
    .await?;
    add_member(conn, hasher, &family_id, access, now, ttl).await
}

/// Adds a fresh token to a family (after the caller spent the old one).
pub async fn add_member(
    conn: &mut AnyConnection,
    hasher: &SecretHasher,
    family_id: &str,
    access: IssuedWith<'_>,
    now: i64,
    ttl: i64,
) -> Result<NewRefreshToken> {
    let token = URL_SAFE_NO_PAD.encode(random::bytes::<32>()?);
    let expires_at = now.saturating_add(ttl);
    refresh_tokens::insert_token(
        conn,
        &TokenRow {
            token_hash: hasher.hash(Purpose::REFRESH_TOKEN, &token),
            family_id: family_id.to_owned(),
            created_at: now,
            expires_at,
            rotated_at: None,
            access_jti: Some(access.jti.to_owned()),
            access_exp: Some(access.exp),
        },
    )
    .await?;
    // Expired tokens are useless, also for reuse detection; sweep them here,
    // where writes happen anyway.
    refresh_tokens::delete_expired(conn, now).await?;
    Ok(NewRefreshToken { token, family_id: family_id.to_owned(), expires_at })
}

/// Revokes a family and every live access token issued with its members.
/// Returns the revoked `jti`s (empty if the family was revoked already).
pub async fn revoke_family(conn: &mut AnyConnection, family_id: &str, now: i64, reason: &str) -> Result<Vec<String>> {
    if !refresh_tokens::revoke_family(conn, family_id, now, reason).await? {
        return Ok(Vec::new());
    }
    let live = refresh_tokens::live_access_tokens(&mut *conn, family_id, now).await?;
    let mut revoked = Vec::with_capacity(live.len());
    for (jti, exp) in live {
        revocation::revoke_access_token(conn, &jti, exp, now, reason).await?;
        revoked.push(jti);
    }
    Ok(revoked)
}
