//! OAuth clients: who they are, how they registered, how they prove it.
//!
//! - [`metadata`]: RFC 7591 client metadata, its defaults and checks;
//! - [`redirect_uri`]: which redirect URIs are allowed and how they match;
//! - [`registration`]: RFC 7591/7592 registration and the operator's clients;
//! - [`cimd`]: clients described by a Client ID Metadata Document;
//! - [`authenticate`]: client authentication at the token, revocation and
//!   introspection endpoints.
//!
//! [`find`] is the one way to turn a `client_id` into a [`Client`], whichever
//! way it registered. What a client may *do* with its grants is decided by the
//! authorization endpoint and the grants, not here.

pub mod authenticate;
pub mod cimd;
pub mod metadata;
pub mod redirect_uri;
pub mod registration;

pub use metadata::{AuthMethod, ClientMetadata, GrantType};

use crate::app::App;
use crate::error::{Error, Result};
use crate::storage::oauth_clients::{self, ClientRow};

/// Longest `client_id` looked up.
const MAX_CLIENT_ID: usize = 2000;

/// How a client came to be known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// RFC 7591 dynamic registration.
    Dynamic,
    /// Registered by an operator (`sekisho-authz clients register`).
    Operator,
    /// Its `client_id` is the URL of its metadata document.
    MetadataDocument,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Dynamic => "dcr",
            Source::Operator => "cli",
            Source::MetadataDocument => "cimd",
        }
    }
}

/// A client that exists and is not revoked.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub source: Source,
    pub metadata: ClientMetadata,
    /// Keyed hash of the secret; `None` for public clients.
    pub(crate) secret_hash: Option<String>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.metadata.is_public()
    }

    /// What the consent page calls the client. A registered name is the
    /// client's own claim; the page says so.
    pub fn display_name(&self) -> &str {
        self.metadata.client_name.as_deref().unwrap_or(&self.id)
    }

    /// The registered redirect URI an authorization request means: the one it
    /// names if that is registered, or the only one if it names none.
    pub fn redirect_uri(&self, requested: Option<&str>) -> Option<String> {
        let registered = &self.metadata.redirect_uris;
        match requested {
            Some(uri) => registered.iter().any(|r| redirect_uri::matches(r, uri)).then(|| uri.to_owned()),
            None => match registered.as_slice() {
                [only] => Some(only.clone()),
                _ => None,
            },
        }
    }

    pub(crate) fn from_row(row: ClientRow) -> Result<Client> {
        let source = match row.registered_by.as_str() {
            "dcr" => Source::Dynamic,
            "cli" => Source::Operator,
            other => {
                return Err(Error::internal(anyhow::anyhow!(
                    "client {}: unknown registered_by `{other}`",
                    row.client_id
                )));
            }
        };
        let metadata = serde_json::from_str(&row.metadata).map_err(|e| {
            Error::internal(anyhow::anyhow!("client {}: stored metadata is not valid: {e}", row.client_id))
        })?;
        Ok(Client { id: row.client_id, source, metadata, secret_hash: row.secret_hash })
    }
}

/// The live client `client_id` names; `invalid_client` if there is none.
pub async fn find(app: &App, client_id: &str) -> Result<Client> {
    // No client id we issue has a control character, and PostgreSQL cannot
    // even compare a text with a NUL in it: such an id is unknown, not a fault.
    if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID || client_id.chars().any(char::is_control) {
        return Err(Error::invalid_client("unknown client"));
    }
    if cimd::Resolver::is_document_url(client_id) {
        let metadata = app.cimd.resolve(client_id).await?;
        return Ok(Client { id: client_id.to_owned(), source: Source::MetadataDocument, metadata, secret_hash: None });
    }
    match oauth_clients::find(&app.db, client_id).await? {
        Some(row) if row.revoked_at.is_none() => Client::from_row(row),
        _ => Err(Error::invalid_client("unknown client")),
    }
}
