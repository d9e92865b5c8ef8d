//! Set-up: make sure every tool the stack and the tests need is present and
//! built, installing what is missing into `.sekisho/`. Idempotent, and quick
//! when everything is already there (cargo's own up-to-date check does the
//! work for builds).
//!
//! One module per tool, each with a function that ensures it. Tools for later
//! suites (Python and Node clients, a browser) get their own module here.

pub mod envoy;
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

/// Runs one set-up step under a heading, so a failure says which step it was.
pub fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    eprintln!("==> set-up: {name}");
    f().map_err(|e| e.context(format!("set-up step `{name}` failed")))
}
