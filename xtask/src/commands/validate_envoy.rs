//! `cargo xtask validate-envoy`: render the template with the `up` defaults and
//! let Envoy validate it. Envoy loads the wasm module while validating, so the
//! filter is built first.

use std::process::ExitCode;

use anyhow::{Context, Result};
use xtask::envoy_config::{self, EnvoyVars};
use xtask::{setup, workspace};

pub fn run() -> Result<ExitCode> {
    setup::step("rust target", setup::rust::ensure_wasm_target)?;
    let envoy = setup::step("envoy", setup::envoy::ensure)?;
    let wasm = match std::env::var_os(workspace::ENV_FILTER_WASM) {
        Some(path) => path.into(),
        None => setup::step("filter build", setup::rust::build_filter)?,
    };
    let vars = EnvoyVars::loopback(8080, 9901, 9000, 9100, &wasm);
    let dir = workspace::state_dir().join("envoy");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join("validate.yaml");
    envoy_config::render_to_file(&vars, &config)?;
    envoy_config::validate(&envoy, &config)?;
    println!("{}: OK (rendered to {})", workspace::envoy_template().display(), config.display());
    Ok(ExitCode::SUCCESS)
}
