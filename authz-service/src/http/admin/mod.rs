//! The admin API under `/admin/v1`: instances, signing keys, minted tokens,
//! API keys and the audit log. Every route requires `Authorization: Bearer
//! <SEKISHO_ADMIN_TOKEN>` ([`auth`]); it is not mounted at all without one.

mod api_keys;
mod audit;
pub mod auth;
mod instances;
mod keys;
mod tokens;

use axum::Router;
use axum::middleware;

use crate::app::App;

pub fn routes(app: App) -> Router<App> {
    Router::new()
        .merge(instances::routes())
        .merge(keys::routes())
        .merge(tokens::routes())
        .merge(api_keys::routes())
        .merge(audit::routes())
        .route_layer(middleware::from_fn_with_state(app, auth::require_admin_token))
}
