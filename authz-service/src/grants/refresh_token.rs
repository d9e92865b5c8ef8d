//! `grant_type=refresh_token` (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14).
//!
//! Every use rotates: the presented token is spent by a conditional UPDATE and
//! a new member joins its family, so two concurrent rotations of one token (two
//! replicas) yield exactly one new member. A spent token presented again:
//! - within `SEKISHO_REFRESH_REUSE_GRACE_SECS` of its rotation — a client's
//!   retry after a lost response, or two tabs racing — is refused
//!   (`invalid_grant`) and nothing else happens;
//! - later, it is treated as stolen: the whole family is revoked, with the
//!   access tokens issued alongside it.
//!
//! A refresh may narrow the scope and the resources of the new access token
//! but never widen them (`invalid_scope`, `invalid_target`); the family keeps
//! its original grant, so a later refresh may ask for all of it again.

use crate::storage::WriteTx;
use sekisho_contract::scope::{OFFLINE_ACCESS, ScopeSet};
use serde_json::json;

use crate::audit::{self, AuditEvent, EventKind};
use crate::crypto::secret_hash::Purpose;
use crate::error::{Error, Result};
use crate::grants::{Context, TokenResponse, access_token, issued_event, narrowed_audience};
use crate::storage::refresh_tokens::{self, FamilyRow, TokenRow};
use crate::targets;
use crate::time::now_unix;
use crate::tokens::refresh::{self, IssuedWith};

pub const GRANT_TYPE: &str = "refresh_token";

pub async fn refresh(ctx: &Context<'_>) -> Result<TokenResponse> {
    let Context { app, client, params, actor } = ctx;
    let presented = params.required("refresh_token")?;
    let requested_scope = targets::parse_scope(params.one("scope")?)?;
    let requested_resources = params.all("resource");
    let token_hash = app.hasher.hash(Purpose::REFRESH_TOKEN, presented);
    let now = now_unix();

    let mut tx = app.db.begin().await?;
    let Some(token) = refresh_tokens::get_token(&mut *tx, &token_hash).await? else {
        return Err(not_valid());
    };
    let family = refresh_tokens::get_family(&mut *tx, &token.family_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("refresh token without a family")))?;
    if family.client_id != client.id {
        return Err(Error::invalid_grant("the refresh token was issued to another client"));
    }
    if family.revoked_at.is_some() {
        return Err(Error::invalid_grant("the refresh token has been revoked"));
    }
    if token.rotated_at.is_some() {
        return Err(reused(ctx, tx, &token, &family, now).await?);
    }
    if token.expires_at <= now {
        return Err(Error::invalid_grant("the refresh token has expired"));
    }

    let granted_scope =
        ScopeSet::parse(&family.scope).map_err(|e| Error::internal(anyhow::anyhow!("refresh family scope: {e}")))?;
    let granted_resource_scope = granted_scope.without(OFFLINE_ACCESS);
    let scope = match requested_scope {
        Some(asked) => {
            if !asked.resource_scope.is_subset_of(&granted_resource_scope)
                || (asked.offline_access && !granted_scope.contains(OFFLINE_ACCESS))
            {
                return Err(Error::invalid_scope(format!(
                    "the refresh token grants `{granted_scope}`; a refresh may narrow the scope, never widen it"
                )));
            }
            if asked.resource_scope.is_empty() { granted_resource_scope } else { asked.resource_scope }
        }
        None => granted_resource_scope,
    };
    let granted_resources: Vec<String> = serde_json::from_str(&family.resources)
        .map_err(|e| Error::internal(anyhow::anyhow!("refresh family resources: {e}")))?;
    let (audience, instances) = narrowed_audience(app, &requested_resources, &granted_resources).await?;
    // The instances' policies may have changed since the grant.
    targets::check_offered(&instances, &scope)?;

    if !refresh_tokens::rotate(&mut tx, &token_hash, now).await? {
        // Another rotation committed between our read and our update.
        let token = refresh_tokens::get_token(&mut *tx, &token_hash).await?.ok_or_else(not_valid)?;
        return Err(reused(ctx, tx, &token, &family, now).await?);
    }
    let access = access_token(app, &family.subject, &client.id, &audience, &scope, now)?;
    let next = refresh::add_member(
        &mut tx,
        &app.hasher,
        &family.id,
        IssuedWith { jti: &access.jti, exp: access.expires_at },
        now,
        app.config.oauth.refresh_token_ttl,
    )
    .await?;
    let issued = issued_event(actor, GRANT_TYPE, &family.subject, &client.id, &access, &audience, Some(&family.id));
    audit::record(&mut tx, &issued).await?;
    tx.commit().await?;

    Ok(TokenResponse {
        scope: targets::with_offline_access(&scope, granted_scope.contains(OFFLINE_ACCESS)).to_string(),
        expires_in: access.expires_in,
        token_type: "Bearer",
        refresh_token: Some(next.token),
        access_token: access.token,
    })
}

/// A spent token came back: refuse, and revoke the family unless this looks
/// like a retry within the grace window. Commits the audit row (and the
/// revocation) and returns the refusal.
async fn reused(ctx: &Context<'_>, mut tx: WriteTx, token: &TokenRow, family: &FamilyRow, now: i64) -> Result<Error> {
    let rotated_at = token.rotated_at.unwrap_or(now);
    // Strictly less: a grace of 0 turns the window off.
    let within_grace = now.saturating_sub(rotated_at) < ctx.app.config.oauth.refresh_reuse_grace;
    let (reason, revoked) = if within_grace {
        ("reused within the grace window; family kept", Vec::new())
    } else {
        let revoked = refresh::revoke_family(&mut tx, &family.id, now, "refresh token reused").await?;
        ("reused after rotation; family revoked", revoked)
    };
    let event = AuditEvent::failure(
        EventKind::RefreshReused,
        ctx.actor,
        reason,
        json!({
            "refresh_family": family.id,
            "rotated_at": rotated_at,
            "revoked_access_tokens": revoked,
        }),
    )
    .with_client(&ctx.client.id)
    .with_subject(&family.subject);
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    if !within_grace {
        tracing::warn!(
            client_id = ctx.client.id.as_str(),
            family = family.id.as_str(),
            "refresh token reused; family revoked"
        );
    }
    Ok(Error::invalid_grant("the refresh token was already used"))
}

fn not_valid() -> Error {
    Error::invalid_grant("the refresh token is not valid")
}
