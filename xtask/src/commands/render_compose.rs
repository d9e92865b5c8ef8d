//! `cargo xtask render-compose`: render `envoy/sekisho.yaml.tmpl` for the
//! docker-compose stack into `examples/envoy-compose.yaml` (plain HTTP) and
//! `examples/envoy-compose-tls.yaml` (HTTPS, with
//! `examples/docker-compose.tls.yml`). Compose has no renderer, so the results
//! are committed; `tests/tests/deployment_artifacts.rs` fails when they are not
//! what this command writes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use xtask::envoy_config;

pub fn run() -> Result<ExitCode> {
    let outputs = [
        (envoy_config::compose_config_path(), envoy_config::render_compose()?),
        (envoy_config::compose_tls_config_path(), envoy_config::render_compose_tls()?),
    ];
    for (path, rendered) in outputs {
        std::fs::write(&path, rendered).with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
