//! `cargo xtask render-compose`: render `envoy/sekisho.yaml.tmpl` for the
//! docker-compose stack into `examples/envoy-compose.yaml`. Compose has no
//! renderer, so the result is committed; `tests/tests/deployment_artifacts.rs`
//! fails when it is not what this command writes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use xtask::envoy_config;

pub fn run() -> Result<ExitCode> {
    let out = envoy_config::compose_config_path();
    let rendered = envoy_config::render_compose()?;
    std::fs::write(&out, rendered).with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
