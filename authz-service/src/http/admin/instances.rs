//! `/admin/v1/instances`: register, inspect, change and remove MCP instances.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sekisho_contract::policy::AuthMode;
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Error, Result};
use crate::http::admin::auth::AdminActor;
use crate::http::extract::{Json, Path};
use crate::registry::{self, Instance, InstanceSpec, Saved};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/instances", get(list).post(create))
        .route("/instances/{id}", get(show).put(put).delete(delete))
}

/// The body of POST and PUT. `id` is required by POST; PUT takes it from the
/// path and accepts it in the body only if it is the same.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    auth_mode: AuthMode,
    #[serde(default)]
    method_scopes: BTreeMap<String, String>,
    #[serde(default)]
    tool_scopes: BTreeMap<String, String>,
}

impl InstanceBody {
    fn into_parts(self) -> (Option<String>, InstanceSpec) {
        let spec = InstanceSpec {
            display_name: self.display_name,
            auth_mode: self.auth_mode,
            method_scopes: self.method_scopes,
            tool_scopes: self.tool_scopes,
        };
        (self.id, spec)
    }
}

/// An instance with the URIs clients and operators need.
#[derive(Debug, Serialize)]
struct InstanceView {
    #[serde(flatten)]
    instance: Instance,
    resource: String,
    resource_metadata: String,
}

#[derive(Debug, Serialize)]
struct InstanceList {
    instances: Vec<InstanceView>,
}

fn view(app: &App, instance: Instance) -> InstanceView {
    InstanceView {
        resource: instance.resource(app.issuer()),
        resource_metadata: instance.resource_metadata_url(app.issuer()),
        instance,
    }
}

async fn list(State(app): State<App>) -> Result<axum::Json<InstanceList>> {
    let instances = registry::list(&app.db).await?.into_iter().map(|i| view(&app, i)).collect();
    Ok(axum::Json(InstanceList { instances }))
}

async fn show(State(app): State<App>, Path(id): Path<String>) -> Result<axum::Json<InstanceView>> {
    let instance = registry::get(&app.db, &id).await?.ok_or_else(|| Error::not_found(format!("no instance `{id}`")))?;
    Ok(axum::Json(view(&app, instance)))
}

async fn create(
    State(app): State<App>,
    AdminActor(actor): AdminActor,
    Json(body): Json<InstanceBody>,
) -> Result<Response> {
    let (id, spec) = body.into_parts();
    let id = id.ok_or_else(|| Error::invalid_request("`id` is required"))?;
    let instance = registry::create(&app.db, &id, &spec, &actor).await?;
    Ok(created(&app, instance))
}

async fn put(
    State(app): State<App>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
    Json(body): Json<InstanceBody>,
) -> Result<Response> {
    let (body_id, spec) = body.into_parts();
    if body_id.is_some_and(|b| b != id) {
        return Err(Error::invalid_request("`id` in the body differs from the path"));
    }
    let (instance, saved) = registry::put(&app.db, &id, &spec, &actor).await?;
    Ok(match saved {
        Saved::Created => created(&app, instance),
        Saved::Updated | Saved::Unchanged => axum::Json(view(&app, instance)).into_response(),
    })
}

async fn delete(State(app): State<App>, AdminActor(actor): AdminActor, Path(id): Path<String>) -> Result<StatusCode> {
    registry::delete(&app.db, &id, &actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn created(app: &App, instance: Instance) -> Response {
    let location = HeaderValue::from_str(&format!("/admin/v1/instances/{}", instance.id)).ok();
    let mut response = (StatusCode::CREATED, axum::Json(view(app, instance))).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
