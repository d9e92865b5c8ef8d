//! Consent: what the user is asked, and what is remembered so that the next
//! login of the same user for the same client, resources and scopes does not
//! ask again. A remembered consent covers a request when, for every resource,
//! the scopes approved before include the scopes asked for now.

use sekisho_contract::scope::ScopeSet;
use sqlx::AnyConnection;

use crate::app::App;
use crate::authorize::pending::Pending;
use crate::authorize::request::AuthorizationRequest;
use crate::clients::{Client, Source, redirect_uri};
use crate::error::Result;
use crate::registry;
use crate::storage::consents;
use crate::targets;

/// Everything the consent page shows. Every string is untrusted (it comes from
/// the client) and is escaped when rendered.
#[derive(Debug, Clone)]
pub struct ConsentPage {
    pub request_id: String,
    pub csrf: String,
    pub client_id: String,
    /// The client's `client_name` (its own claim), or its id.
    pub client_name: String,
    pub source: Source,
    pub redirect_uri: String,
    pub redirect_host: String,
    /// The redirect goes to the user's own machine: any local program could
    /// have registered it, which the page warns about.
    pub redirect_is_loopback: bool,
    /// (display name, resource URI) of each instance.
    pub instances: Vec<(String, String)>,
    pub scopes: Vec<String>,
    pub offline_access: bool,
}

pub async fn page(app: &App, pending: &Pending, client: &Client, csrf: String) -> Result<ConsentPage> {
    let request = &pending.request;
    let mut instances = Vec::new();
    for (id, resource) in request.instances.iter().zip(&request.resources) {
        let name = registry::get(&app.db, id).await?.map_or_else(|| id.clone(), |i| i.display_name);
        instances.push((name, resource.clone()));
    }
    Ok(ConsentPage {
        request_id: pending.id.clone(),
        csrf,
        client_id: client.id.clone(),
        client_name: client.display_name().to_owned(),
        source: client.source,
        redirect_host: redirect_uri::display_host(&request.redirect_uri),
        redirect_is_loopback: redirect_uri::is_loopback(&request.redirect_uri),
        redirect_uri: request.redirect_uri.clone(),
        instances,
        scopes: request.scope.split(' ').map(str::to_owned).collect(),
        offline_access: request.offline_access,
    })
}

/// The scope consent is about: the resource scopes and `offline_access`.
pub fn consented_scope(request: &AuthorizationRequest) -> ScopeSet {
    let scope = ScopeSet::parse(&request.scope).unwrap_or_default();
    targets::with_offline_access(&scope, request.offline_access)
}

pub async fn is_remembered(app: &App, subject: &str, request: &AuthorizationRequest) -> Result<bool> {
    let asked = consented_scope(request);
    for resource in &request.resources {
        let given = consents::get(app.db.pool(), subject, &request.client_id, resource).await?;
        let covered = given.and_then(|s| ScopeSet::parse(&s).ok()).is_some_and(|given| asked.is_subset_of(&given));
        if !covered {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Adds what was approved now to what is remembered.
pub async fn remember(conn: &mut AnyConnection, subject: &str, request: &AuthorizationRequest, now: i64) -> Result<()> {
    let asked = consented_scope(request);
    for resource in &request.resources {
        let given = consents::get(&mut *conn, subject, &request.client_id, resource)
            .await?
            .and_then(|s| ScopeSet::parse(&s).ok())
            .unwrap_or_default();
        let union = ScopeSet::from_iter(given.iter().chain(asked.iter()));
        consents::put(conn, subject, &request.client_id, resource, &union.to_string(), now).await?;
    }
    Ok(())
}
