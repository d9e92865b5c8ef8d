//! What a [`Stack`](crate::Stack) is started with.

use std::path::PathBuf;

use xtask::envoy_config::EnvoyVars;

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
        }
    }
}
