//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636, RFC 8707).
//!
//! A code is redeemed once. The redemption is a conditional UPDATE inside the
//! transaction that issues the tokens, so of two concurrent redemptions — two
//! replicas on one PostgreSQL — exactly one wins. Any other use of a redeemed
//! code is a replay (RFC 6749 §4.1.2, RFC 9700 §4.2.4): refused with
//! `invalid_grant`, and what the first redemption issued is revoked — its
//! refresh-token family and its access token's `jti`, which the filter learns
//! through `FilterPolicy.revoked`.

use crate::storage::WriteTx;
use sekisho_contract::scope::ScopeSet;
use serde_json::json;

use crate::audit::{self, AuditEvent, EventKind};
use crate::crypto::secret_hash::Purpose;
use crate::error::{Error, Result};
use crate::grants::{Context, TokenResponse, access_token, issued_event, narrowed_audience};
use crate::pkce;
use crate::storage::authorization_codes::{self, CodeRow};
use crate::time::now_unix;
use crate::tokens::refresh::{self, FamilyGrant, IssuedWith};
use crate::tokens::revocation;

pub const GRANT_TYPE: &str = "authorization_code";

pub async fn exchange(ctx: &Context<'_>) -> Result<TokenResponse> {
    let Context { app, client, params, actor } = ctx;
    let code = params.required("code")?;
    let verifier = params.required("code_verifier")?;
    let redirect_uri = params.one("redirect_uri")?;
    let requested_resources = params.all("resource");
    let code_hash = app.hasher.hash(Purpose::AUTHORIZATION_CODE, code);
    let now = now_unix();

    let mut tx = app.db.begin().await?;
    let Some(row) = authorization_codes::get(&mut *tx, &code_hash).await? else {
        return Err(Error::invalid_grant("the authorization code is not valid"));
    };
    if row.redeemed_at.is_some() {
        return Err(replayed(ctx, tx, &row, now).await?);
    }
    if row.expires_at <= now {
        return Err(Error::invalid_grant("the authorization code has expired"));
    }
    if row.client_id != client.id {
        return Err(Error::invalid_grant("the authorization code was issued to another client"));
    }
    let redirect_ok = match redirect_uri {
        Some(uri) => uri == row.redirect_uri,
        // RFC 6749 §4.1.3: required if the authorization request had it.
        None => row.redirect_uri_given == 0,
    };
    if !redirect_ok {
        return Err(Error::invalid_grant("redirect_uri does not match the authorization request"));
    }
    if !pkce::verify(verifier, &row.code_challenge)? {
        return Err(Error::invalid_grant("code_verifier does not match the code_challenge"));
    }
    let granted: Vec<String> = serde_json::from_str(&row.resources)
        .map_err(|e| Error::internal(anyhow::anyhow!("authorization code resources: {e}")))?;
    let (audience, _) = narrowed_audience(app, &requested_resources, &granted).await?;
    let scope =
        ScopeSet::parse(&row.scope).map_err(|e| Error::internal(anyhow::anyhow!("authorization code scope: {e}")))?;

    if !authorization_codes::redeem(&mut tx, &code_hash, now).await? {
        // Another redemption committed between our read and our update.
        let row = authorization_codes::get(&mut *tx, &code_hash)
            .await?
            .ok_or_else(|| Error::invalid_grant("the authorization code is not valid"))?;
        return Err(replayed(ctx, tx, &row, now).await?);
    }
    let access = access_token(app, &row.subject, &client.id, &audience, &scope, now)?;
    let refresh = if row.refresh == 1 {
        Some(
            refresh::start_family(
                &mut tx,
                &app.hasher,
                &FamilyGrant { client_id: &client.id, subject: &row.subject, resources: &granted, scope: &row.scope },
                IssuedWith { jti: &access.jti, exp: access.expires_at },
                now,
                app.config.oauth.refresh_token_ttl,
            )
            .await?,
        )
    } else {
        None
    };
    let family = refresh.as_ref().map(|r| r.family_id.as_str());
    authorization_codes::record_issued(&mut tx, &code_hash, &access.jti, access.expires_at, family).await?;
    let redeemed = AuditEvent::success(EventKind::CodeRedeemed, actor, json!({ "jti": access.jti }))
        .with_client(&client.id)
        .with_subject(&row.subject);
    audit::record(&mut tx, &redeemed).await?;
    let issued = issued_event(actor, GRANT_TYPE, &row.subject, &client.id, &access, &audience, family);
    audit::record(&mut tx, &issued).await?;
    tx.commit().await?;

    Ok(TokenResponse {
        expires_in: access.expires_in,
        token_type: "Bearer",
        refresh_token: refresh.map(|r| r.token),
        // The granted scope: offline_access shows only when a refresh token came with it.
        scope: if row.refresh == 1 { row.scope } else { access.scope.clone() },
        access_token: access.token,
    })
}

/// Revokes what the code's first redemption issued, commits that with its
/// audit row, and returns the refusal for the replay.
async fn replayed(ctx: &Context<'_>, mut tx: WriteTx, row: &CodeRow, now: i64) -> Result<Error> {
    const REASON: &str = "authorization code replayed";
    let mut revoked = Vec::new();
    if let Some(family) = &row.family_id {
        revoked.extend(refresh::revoke_family(&mut tx, family, now, REASON).await?);
    }
    if let (Some(jti), Some(exp)) = (&row.access_jti, row.access_exp) {
        revocation::revoke_access_token(&mut tx, jti, exp, now, REASON).await?;
        if !revoked.contains(jti) {
            revoked.push(jti.clone());
        }
    }
    let event = AuditEvent::failure(
        EventKind::CodeReplayed,
        ctx.actor,
        REASON,
        json!({
            "code_client_id": row.client_id,
            "refresh_family": row.family_id,
            "revoked_access_tokens": revoked,
        }),
    )
    .with_client(&ctx.client.id)
    .with_subject(&row.subject);
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    tracing::warn!(client_id = ctx.client.id.as_str(), "authorization code replayed; revoked what it had issued");
    Ok(Error::invalid_grant("the authorization code was already used; the tokens issued for it are revoked"))
}
