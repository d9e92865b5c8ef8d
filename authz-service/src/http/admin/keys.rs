//! `/admin/v1/keys`: list the signing keys and rotate them.

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Error, Result};
use crate::http::admin::auth::AdminActor;
use crate::http::extract::Body;
use crate::keys::KeySource;
use crate::keys::stored::{self, KeyInfo, Rotation};

pub fn routes() -> Router<App> {
    Router::new().route("/keys", get(list)).route("/keys/rotate", post(rotate))
}

#[derive(Debug, Serialize)]
struct KeyList {
    /// `database` (generated, rotatable) or `environment` (`JWT_PRIVATE_KEY`).
    source: &'static str,
    signing_kid: String,
    keys: Vec<KeyInfo>,
}

async fn list(State(app): State<App>) -> Result<axum::Json<KeyList>> {
    let ring = app.keys.current();
    let source = match ring.source() {
        KeySource::Database => "database",
        KeySource::Environment => "environment",
    };
    let keys = stored::list(&app.db).await?;
    Ok(axum::Json(KeyList { source, signing_kid: ring.signer().kid().to_owned(), keys }))
}

/// The optional body of a rotation; an empty body means `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// Retire the previous key even if tokens it signed may still be valid.
    #[serde(default)]
    force: bool,
}

async fn rotate(
    State(app): State<App>,
    AdminActor(actor): AdminActor,
    Body(body): Body,
) -> Result<axum::Json<Rotation>> {
    // Read by hand so that a bodiless POST (curl -X POST) works as well as JSON.
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::invalid_request(format!("invalid rotation request: {e}")))?
    };
    Ok(axum::Json(app.rotate_keys(&actor, request.force).await?))
}
