//! Registering and managing clients: RFC 7591 dynamic registration, RFC 7592
//! read/update/delete with the registration access token, and the operator's
//! `clients register|list|revoke`.
//!
//! Secrets are generated here, handed out once, and stored only as keyed
//! hashes. Every change is audited in its own transaction, without secrets.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, Actor, AuditEvent, EventKind};
use crate::clients::metadata::{self, ClientMetadata, Registrar, RegistrationRequest};
use crate::clients::{Client, Source};
use crate::crypto::random;
use crate::crypto::secret_hash::Purpose;
use crate::error::{Error, ErrorCode, Result};
use crate::storage::oauth_clients::{self, ClientRow};
use crate::storage::{consents, refresh_tokens};
use crate::time::now_unix;
use crate::tokens::refresh;

/// Realm of the RFC 7592 bearer challenge.
const REALM: &str = "sekisho-registration";

/// RFC 7591 §3.2.1 client information: what a registration returns. The
/// secret and the registration access token appear only in the answer to the
/// registration itself. `Debug` shows neither.
#[derive(Clone, Serialize)]
pub struct ClientInformation {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    /// 0 (never) for confidential clients; absent for public ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
    #[serde(flatten)]
    pub metadata: ClientMetadata,
}

impl fmt::Debug for ClientInformation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInformation")
            .field("client_id", &self.client_id)
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// A registered client as `clients list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientSummary {
    pub client_id: String,
    pub client_name: Option<String>,
    pub public: bool,
    pub registered_by: String,
    pub grant_types: Vec<&'static str>,
    pub redirect_uris: Vec<String>,
    pub scope: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Registers a client. `registrar` is `Dynamic` for `POST /oauth/register`
/// (which also gets a registration access token) or `Operator` for the CLI.
pub async fn register(
    app: &App,
    request: RegistrationRequest,
    registrar: Registrar,
    actor: &Actor,
) -> Result<ClientInformation> {
    let source = match registrar {
        Registrar::Dynamic => Source::Dynamic,
        Registrar::Operator => Source::Operator,
        Registrar::MetadataDocument => {
            return Err(Error::internal(anyhow::anyhow!("metadata-document clients are not registered")));
        }
    };
    let metadata = metadata::validate(request, registrar)?;
    let client_id = client_id()?;
    let client_secret = (!metadata.is_public()).then(secret).transpose()?;
    let registration_token = (source == Source::Dynamic).then(secret).transpose()?;
    let now = now_unix();
    let row = ClientRow {
        client_id: client_id.clone(),
        metadata: serde_json::to_string(&metadata).map_err(Error::internal)?,
        secret_hash: client_secret.as_deref().map(|s| app.hasher.hash(Purpose::CLIENT_SECRET, s)),
        registration_token_hash: registration_token
            .as_deref()
            .map(|t| app.hasher.hash(Purpose::REGISTRATION_ACCESS_TOKEN, t)),
        registered_by: source.as_str().to_owned(),
        created_at: now,
        updated_at: now,
        revoked_at: None,
    };
    let event = AuditEvent::success(EventKind::ClientRegistered, actor, describe(&metadata)).with_client(&client_id);
    let mut tx = app.db.begin().await?;
    oauth_clients::insert(&mut tx, &row).await?;
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(ClientInformation {
        registration_client_uri: registration_token.as_ref().map(|_| registration_client_uri(app, &client_id)),
        client_id,
        client_secret_expires_at: client_secret.as_ref().map(|_| 0),
        client_secret,
        client_id_issued_at: now,
        registration_access_token: registration_token,
        metadata,
    })
}

/// RFC 7592 §2.1: the client's current information, for the holder of its
/// registration access token.
pub async fn read(app: &App, client_id: &str, token: Option<&str>) -> Result<ClientInformation> {
    let row = management_access(app, client_id, token).await?;
    information(app, row)
}

/// RFC 7592 §2.2: replaces the client's metadata.
pub async fn update(
    app: &App,
    client_id: &str,
    token: Option<&str>,
    mut request: RegistrationRequest,
    actor: &Actor,
) -> Result<ClientInformation> {
    let row = management_access(app, client_id, token).await?;
    if request.client_id.take().is_some_and(|id| id != client_id) {
        return Err(Error::invalid_request("client_id in the body does not match the client"));
    }
    if let Some(sent) = request.client_secret.take() {
        let matches = row.secret_hash.as_deref().is_some_and(|h| app.hasher.matches(Purpose::CLIENT_SECRET, &sent, h));
        if !matches {
            return Err(Error::invalid_request("client_secret in the body is not the client's secret"));
        }
    }
    let current = Client::from_row(row.clone())?;
    let metadata = metadata::validate(request, Registrar::Dynamic)?;
    if metadata.is_public() != current.is_public() {
        return Err(Error::refused(
            ErrorCode::InvalidClientMetadata,
            "a client cannot change between public and confidential; register a new one",
        ));
    }
    let text = serde_json::to_string(&metadata).map_err(Error::internal)?;
    let event = AuditEvent::success(EventKind::ClientUpdated, actor, describe(&metadata)).with_client(client_id);
    let mut tx = app.db.begin().await?;
    if !oauth_clients::update_metadata(&mut tx, client_id, &text, now_unix()).await? {
        return Err(unauthorized(true));
    }
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    information(app, ClientRow { metadata: text, ..row })
}

/// RFC 7592 §2.3: the client deregisters itself.
pub async fn delete(app: &App, client_id: &str, token: Option<&str>, actor: &Actor) -> Result<()> {
    management_access(app, client_id, token).await?;
    revoke(app, client_id, actor).await
}

/// Revokes a registered client: it can no longer authenticate, its refresh
/// tokens (and the access tokens issued with them) are revoked, and consents
/// given to it are forgotten. `not_found` if there is no such live client.
pub async fn revoke(app: &App, client_id: &str, actor: &Actor) -> Result<()> {
    let now = now_unix();
    let mut tx = app.db.begin().await?;
    if !oauth_clients::revoke(&mut tx, client_id, now).await? {
        return Err(Error::not_found(format!("no live client `{client_id}`")));
    }
    let families = refresh_tokens::live_families_of_client(&mut *tx, client_id).await?;
    let mut revoked_access_tokens = Vec::new();
    for family in &families {
        revoked_access_tokens.extend(refresh::revoke_family(&mut tx, family, now, "client revoked").await?);
    }
    consents::delete_for_client(&mut tx, client_id).await?;
    let details = json!({
        "refresh_families": families.len(),
        "revoked_access_tokens": revoked_access_tokens,
    });
    let event = AuditEvent::success(EventKind::ClientRevoked, actor, details).with_client(client_id);
    audit::record(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Every registered client, revoked ones included, oldest first.
pub async fn list(app: &App) -> Result<Vec<ClientSummary>> {
    oauth_clients::list(app.db.pool())
        .await?
        .into_iter()
        .map(|row| {
            let (created_at, revoked_at, registered_by) = (row.created_at, row.revoked_at, row.registered_by.clone());
            let client = Client::from_row(row)?;
            Ok(ClientSummary {
                public: client.is_public(),
                grant_types: client.metadata.grant_types.iter().map(|g| g.as_str()).collect(),
                redirect_uris: client.metadata.redirect_uris.clone(),
                scope: client.metadata.scope.clone(),
                client_name: client.metadata.client_name.clone(),
                client_id: client.id,
                registered_by,
                created_at,
                revoked_at,
            })
        })
        .collect()
}

/// The client's row, if `token` is its registration access token. Every
/// failure is the same 401, so the endpoint does not reveal which clients exist.
async fn management_access(app: &App, client_id: &str, token: Option<&str>) -> Result<ClientRow> {
    let Some(token) = token else {
        return Err(unauthorized(false));
    };
    let row = oauth_clients::get(app.db.pool(), client_id).await?.filter(|row| row.revoked_at.is_none());
    match row {
        Some(row)
            if row
                .registration_token_hash
                .as_deref()
                .is_some_and(|h| app.hasher.matches(Purpose::REGISTRATION_ACCESS_TOKEN, token, h)) =>
        {
            Ok(row)
        }
        _ => Err(unauthorized(true)),
    }
}

fn unauthorized(credential_sent: bool) -> Error {
    Error::Unauthorized { realm: REALM, credential_sent }
}

fn information(app: &App, row: ClientRow) -> Result<ClientInformation> {
    let issued_at = row.created_at;
    let has_token = row.registration_token_hash.is_some();
    let client = Client::from_row(row)?;
    Ok(ClientInformation {
        client_secret: None,
        client_secret_expires_at: (!client.is_public()).then_some(0),
        client_id_issued_at: issued_at,
        registration_access_token: None,
        registration_client_uri: has_token.then(|| registration_client_uri(app, &client.id)),
        client_id: client.id,
        metadata: client.metadata,
    })
}

fn registration_client_uri(app: &App, client_id: &str) -> String {
    format!("{}/oauth/register/{client_id}", app.issuer())
}

/// 128 random bits in hex: URL-, header- and shell-safe, never a URL (so never
/// mistaken for a metadata document), never starting with `-`.
fn client_id() -> Result<String> {
    Ok(random::bytes::<16>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// 256 random bits, base64url.
fn secret() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random::bytes::<32>()?))
}

/// Audit details of a registration: what was asked for, never a secret.
fn describe(metadata: &ClientMetadata) -> serde_json::Value {
    json!({
        "client_name": metadata.client_name,
        "redirect_uris": metadata.redirect_uris,
        "grant_types": metadata.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_method": metadata.token_endpoint_auth_method.as_str(),
        "scope": metadata.scope,
    })
}
