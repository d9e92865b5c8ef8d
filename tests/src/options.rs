//! What a [`Stack`](crate::Stack) is started with.

use std::path::PathBuf;

use xtask::envoy_config::{EnvoyVars, McpRateLimit};

use crate::ports::Ports;

/// An MCP instance to register with the service at start-up.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    /// `oauth`, `api_key`, `both` or `none`.
    pub auth_mode: String,
}

impl Instance {
    pub fn new(id: &str, auth_mode: &str) -> Instance {
        Instance { id: id.to_owned(), auth_mode: auth_mode.to_owned() }
    }
}

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Fixed ports; free ones are picked when `None`.
    pub ports: Option<Ports>,
    /// A directory to keep (created if missing); a temporary one when `None`,
    /// removed on drop unless the test panicked or `SEKISHO_E2E_KEEP` is set.
    pub data_dir: Option<PathBuf>,
    /// `DATABASE_URL` for the service; SQLite under the data directory when `None`.
    pub database_url: Option<String>,
    /// Registered in this order; the first is the one probed for filter readiness.
    pub instances: Vec<Instance>,
    /// Wait until the filter answers MCP requests with something other than 503.
    pub wait_for_filter: bool,
    /// Envoy worker threads (one wasm VM each).
    pub envoy_concurrency: u32,
    /// How often the filter refreshes keys and policy. The filter refuses a
    /// value below its retry period (2 s by default) at load time.
    pub filter_refresh_seconds: u32,
    /// The admin token; a random one when `None`.
    pub admin_token: Option<String>,
    /// Extra environment for the service (provider settings, keys).
    pub authz_env: Vec<(String, String)>,
    /// Envoy's listener serves HTTPS with a certificate from a CA made at
    /// start-up, and the base URL (the issuer) is `https://`.
    pub tls: bool,
    /// Where the CA and server certificate are written; `<data dir>/tls` when `None`.
    pub tls_dir: Option<PathBuf>,
    /// `sekisho-authz` replicas behind Envoy's `sekisho_authz` cluster (round
    /// robin), sharing one database and master key. More than one needs
    /// PostgreSQL (`database_url` or `fresh_postgres`).
    pub authz_replicas: usize,
    /// A database of the stack's own on the test PostgreSQL server, dropped
    /// with the stack (see [`crate::postgres`]); overrides `database_url`.
    pub fresh_postgres: bool,
    /// Envoy's per-credential rate limit on `/mcp/` (the production default when not changed).
    pub mcp_rate_limit: McpRateLimit,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            ports: None,
            data_dir: None,
            database_url: None,
            instances: vec![Instance::new("demo", "oauth"), Instance::new("other", "oauth")],
            wait_for_filter: true,
            envoy_concurrency: 2,
            filter_refresh_seconds: EnvoyVars::DEFAULT_FILTER_REFRESH_SECONDS,
            admin_token: None,
            authz_env: Vec::new(),
            tls: false,
            tls_dir: None,
            authz_replicas: 1,
            fresh_postgres: false,
            mcp_rate_limit: McpRateLimit::default(),
        }
    }
}
