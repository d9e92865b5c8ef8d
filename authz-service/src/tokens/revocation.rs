//! Revocation: the list of access tokens revoked before they expire, and RFC
//! 7009 revocation of a token by the client that holds it.
//!
//! Access tokens are JWTs the filter verifies without calling us, so revoking
//! one means putting its `jti` on the list, which the filter fetches with its
//! policy (`FilterPolicy.revoked`) and honours until the token's `exp`.
//! Revoking a refresh token revokes its family (and the access tokens issued
//! with it).

use sekisho_contract::policy::RevokedToken;
use serde_json::json;
use sqlx::AnyConnection;

use crate::app::App;
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::clients::Client;
use crate::crypto::secret_hash::Purpose;
use crate::error::Result;
use crate::storage::Db;
use crate::storage::{refresh_tokens, revoked_access_tokens};
use crate::time::now_unix;
use crate::tokens::{introspection, refresh};

/// Puts `jti` on the list until `exp`. Idempotent.
pub async fn revoke_access_token(conn: &mut AnyConnection, jti: &str, exp: i64, now: i64, reason: &str) -> Result<()> {
    if exp <= now {
        // Expired tokens are refused by everyone anyway.
        return Ok(());
    }
    revoked_access_tokens::delete_expired(conn, now).await?;
    revoked_access_tokens::insert(conn, jti, exp, now, reason).await?;
    Ok(())
}

/// The revoked tokens that have not expired, as the filter gets them.
pub async fn live(db: &Db, now: i64) -> Result<Vec<RevokedToken>> {
    Ok(revoked_access_tokens::live(db.pool(), now)
        .await?
        .into_iter()
        .map(|(jti, exp)| RevokedToken { jti, exp })
        .collect())
}

pub async fn is_revoked(db: &Db, jti: &str) -> Result<bool> {
    Ok(revoked_access_tokens::is_revoked(db.pool(), jti).await?)
}

/// RFC 7009 §2: revokes `token` if `client` holds it. A token that is unknown,
/// expired, or another client's is left alone, and the answer is the same
/// (§2.2: the client cannot act on the difference, and must not learn it).
pub async fn revoke_presented(app: &App, client: &Client, token: &str, actor: &Actor) -> Result<()> {
    const REASON: &str = "revoked by the client";
    let now = now_unix();
    if let Some(claims) = introspection::verify_access_token(app, token) {
        if claims.client_id != client.id {
            return Ok(());
        }
        let mut tx = app.db.begin().await?;
        revoke_access_token(&mut tx, &claims.jti, claims.exp, now, REASON).await?;
        let event = AuditEvent::success(
            EventKind::TokenRevoked,
            actor,
            json!({ "token_type": "access_token", "jti": claims.jti }),
        )
        .with_client(&client.id)
        .with_subject(&claims.sub);
        audit::record(&mut tx, &event).await?;
        tx.commit().await?;
        return Ok(());
    }
    let hash = app.hasher.hash(Purpose::REFRESH_TOKEN, token);
    let mut tx = app.db.begin().await?;
    let Some(row) = refresh_tokens::get_token(&mut *tx, &hash).await? else {
        return Ok(());
    };
    let Some(family) = refresh_tokens::get_family(&mut *tx, &row.family_id).await? else {
        return Ok(());
    };
    if family.client_id != client.id || family.revoked_at.is_some() {
        return Ok(());
    }
    let revoked = refresh::revoke_family(&mut tx, &family.id, now, REASON).await?;
    let event = AuditEvent::success(
        EventKind::TokenRevoked,
        actor,
        json!({
            "token_type": "refresh_token",
            "refresh_family": family.id,
            "revoked_access_tokens": revoked,
        }),
    )
    .with_client(&client.id)
    .with_subject(&family.subject);
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}
