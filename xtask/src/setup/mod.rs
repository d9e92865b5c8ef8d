//! Set-up: make sure every tool the stack and the tests need is present and
//! built, installing what is missing into `.sekisho/`. Idempotent, and quick
//! when everything is already there (cargo's own up-to-date check does the
//! work for builds).
//!
//! One module per tool, each with a function that ensures it. The real-client
//! tests' tools (the Python SDK, Node with the TypeScript SDK, Chromium) are
//! set up by [`clients`], which `test` and `setup` run and `up` does not need.

pub mod apt;
pub mod browser;
pub mod envoy;
pub mod node_clients;
pub mod oidc_provider;
pub mod python_clients;
pub mod rust;

use std::path::PathBuf;

use anyhow::Result;

use crate::workspace;

/// What set-up produced: the paths the stack runs.
#[derive(Debug, Clone)]
pub struct Tools {
    pub envoy: PathBuf,
    pub authz: PathBuf,
    pub demo_mcp: PathBuf,
    pub filter_wasm: PathBuf,
}

impl Tools {
    /// The variables `cargo xtask test` exports so the tests use exactly these.
    pub fn env(&self) -> [(&'static str, &PathBuf); 4] {
        [
            (workspace::ENV_ENVOY, &self.envoy),
            (workspace::ENV_AUTHZ_BIN, &self.authz),
            (workspace::ENV_DEMO_MCP_BIN, &self.demo_mcp),
            (workspace::ENV_FILTER_WASM, &self.filter_wasm),
        ]
    }
}

/// Everything `up` and `test` need: the wasm target, Envoy, the workspace's
/// binaries and tests, the filter module.
pub fn all() -> Result<Tools> {
    step("rust target", rust::ensure_wasm_target)?;
    let envoy = step("envoy", envoy::ensure)?;
    step("workspace build", rust::build_workspace)?;
    let filter_wasm = step("filter build", rust::build_filter)?;
    Ok(Tools { envoy, authz: workspace::authz_binary(), demo_mcp: workspace::demo_mcp_binary(), filter_wasm })
}

/// What the real-client tests run (`tests/tests/{python_sdk,typescript_sdk,consent_browser}.rs`).
#[derive(Debug, Clone)]
pub struct ClientTools {
    /// The client venv's interpreter, with the pinned `mcp` SDK.
    pub python: PathBuf,
    /// Node, with `tests/clients/node/node_modules` installed from the lock.
    pub node: PathBuf,
    pub chromium: PathBuf,
}

impl ClientTools {
    /// The variables `cargo xtask test` exports so the tests use exactly these.
    pub fn env(&self) -> [(&'static str, &PathBuf); 3] {
        [
            (workspace::ENV_CLIENTS_PYTHON, &self.python),
            (workspace::ENV_NODE, &self.node),
            (workspace::ENV_CHROMIUM, &self.chromium),
        ]
    }
}

/// The Python SDK (pip, into `.sekisho/clients-venv`), the Node packages
/// (`npm ci`) and Chromium (apt), each only when missing or out of date.
pub fn clients() -> Result<ClientTools> {
    let python = step("python clients", python_clients::ensure)?;
    let node = step("node clients", node_clients::ensure)?;
    let chromium = step("browser", browser::ensure)?;
    // For the browser login through a real OpenID provider (oidc_browser_login.rs).
    step("oidc provider", oidc_provider::ensure)?;
    Ok(ClientTools { python, node, chromium })
}

/// `program` in a directory of `PATH`, if any.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Runs one set-up step under a heading, so a failure says which step it was.
pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> set-up: {name}");
    f().map_err(|e| e.context(format!("set-up step `{name}` failed")))
}
