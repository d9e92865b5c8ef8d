//! The Sekisho authorization service: the OAuth 2.1 authorization server that
//! MCP clients talk to, and the source of the keys and per-instance policy the
//! Envoy filter enforces.
//!
//! Layout, by responsibility:
//! - [`config`], [`logging`], [`app`] (the opened service), [`serve`], [`cli`];
//! - [`http`]: one axum router per area, and [`error`], the one error type that
//!   becomes RFC 6749/6750 JSON responses;
//! - [`registry`]: MCP instances; [`keys`]: signing keys; [`tokens`]: token
//!   issuance; [`api_keys`]: API keys and their verification for the filter;
//!   [`audit`]: the audit log;
//! - the OAuth authorization server: [`clients`] (registration, metadata
//!   documents, client authentication), [`authorize`] (the authorization
//!   endpoint's flow), [`login`] (the identity-provider seam), [`grants`] (one
//!   handler per grant type), with [`params`], [`pkce`] and [`targets`]
//!   (resources and scopes);
//! - [`metrics`]: the Prometheus metrics every handler records into;
//! - [`rate_limit`]: per-IP and per-client rate limits on every endpoint (429 with `Retry-After`);
//! - [`storage`]: SQL, one small module per kind of record; [`crypto`]:
//!   encryption at rest, master key, keyed hashes of secrets, randomness,
//!   constant-time comparison.
//!
//! What the filter must agree on (claims, scopes, resource URIs, JWKs, the
//! policy document) is defined in `sekisho_contract`, not here.

pub mod api_keys;
pub mod app;
pub mod audit;
pub mod audit_journal;
pub mod authorize;
pub mod cli;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod error;
pub mod grants;
pub mod http;
pub mod keys;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod params;
pub mod pkce;
pub mod rate_limit;
pub mod registry;
pub mod serve;
pub mod storage;
pub mod targets;
pub mod time;
pub mod tokens;

pub use app::App;
pub use config::Config;
pub use error::{Error, Result};
