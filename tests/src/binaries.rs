//! The programs a stack runs, found where set-up puts them (or where the
//! `SEKISHO_*` variables exported by `cargo xtask test` point).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use xtask::workspace;

#[derive(Debug, Clone)]
pub struct Binaries {
    pub envoy: PathBuf,
    pub authz: PathBuf,
    pub demo_mcp: PathBuf,
    pub filter_wasm: PathBuf,
}

const HINT: &str = "run `cargo xtask test` (or `cargo xtask setup`), which installs and builds everything";

impl Binaries {
    /// Finds everything or says what is missing; never installs or builds
    /// (a build from inside `cargo test` would wait on cargo's own lock).
    pub fn locate() -> Result<Binaries> {
        let Some(envoy) = xtask::setup::envoy::find() else {
            bail!(
                "no Envoy found (${}, `envoy` on PATH, {}): {HINT}",
                workspace::ENV_ENVOY,
                xtask::setup::envoy::venv_dir().display()
            );
        };
        Ok(Binaries {
            envoy,
            authz: existing(workspace::authz_binary(), workspace::ENV_AUTHZ_BIN)?,
            demo_mcp: existing(workspace::demo_mcp_binary(), workspace::ENV_DEMO_MCP_BIN)?,
            filter_wasm: existing(workspace::filter_wasm(), workspace::ENV_FILTER_WASM)?,
        })
    }
}

fn existing(path: PathBuf, var: &str) -> Result<PathBuf> {
    if !Path::new(&path).is_file() {
        bail!("{} does not exist (override with ${var}): {HINT}", path.display());
    }
    Ok(path)
}
