//! Where things live: the workspace root, the generated-state directory
//! `.sekisho/`, and the build outputs the stack runs.
//!
//! Every path here can be overridden by an environment variable, which is how
//! `cargo xtask test` hands its choices to the tests it runs and how a
//! developer points the harness at another build.

use std::path::{Path, PathBuf};

/// Envoy binary to use (otherwise found by [`crate::setup::envoy`]).
pub const ENV_ENVOY: &str = "SEKISHO_ENVOY";
/// The filter module (otherwise [`filter_wasm`]'s default).
pub const ENV_FILTER_WASM: &str = "SEKISHO_FILTER_WASM";
/// The `sekisho-authz` binary.
pub const ENV_AUTHZ_BIN: &str = "SEKISHO_AUTHZ_BIN";
/// The `sekisho-demo-mcp` binary.
pub const ENV_DEMO_MCP_BIN: &str = "SEKISHO_DEMO_MCP_BIN";
/// The Python interpreter of the client venv (`mcp` SDK installed), for the
/// real-client tests (otherwise [`crate::setup::python_clients`]'s venv).
pub const ENV_CLIENTS_PYTHON: &str = "SEKISHO_CLIENTS_PYTHON";
/// The Node.js binary for the TypeScript SDK and browser tests (otherwise `node` on `PATH`).
pub const ENV_NODE: &str = "SEKISHO_NODE";
/// The Chromium the browser tests drive (otherwise `/usr/bin/chromium`).
pub const ENV_CHROMIUM: &str = "SEKISHO_CHROMIUM";

/// The workspace root. Compiled in: xtask always runs from the checkout it was
/// built from, and so do the tests that link this library.
pub fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// `.sekisho/`: everything the tasks generate or install (gitignored).
pub fn state_dir() -> PathBuf {
    root().join(".sekisho")
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` like cargo does.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { root().join(dir) }
        }
        None => root().join("target"),
    }
}

/// The real-client scripts and their package manifests (`tests/clients/`).
pub fn clients_dir() -> PathBuf {
    root().join("tests").join("clients")
}

/// The Envoy configuration template.
pub fn envoy_template() -> PathBuf {
    root().join("envoy").join("sekisho.yaml.tmpl")
}

/// The profile the native binaries are built with. Debug: `cargo test` needs
/// debug builds anyway, so `up` and `test` share one build (see `setup::rust`).
pub const NATIVE_PROFILE: &str = "debug";

/// A native binary of the workspace, e.g. `sekisho-authz`.
pub fn native_binary(name: &str) -> PathBuf {
    target_dir().join(NATIVE_PROFILE).join(name)
}

pub fn authz_binary() -> PathBuf {
    overridable(ENV_AUTHZ_BIN, || native_binary("sekisho-authz"))
}

pub fn demo_mcp_binary() -> PathBuf {
    overridable(ENV_DEMO_MCP_BIN, || native_binary("sekisho-demo-mcp"))
}

/// The stack runner (`sekisho-e2e`'s binary) that `cargo xtask up` starts.
pub fn stack_binary() -> PathBuf {
    native_binary("sekisho-stack")
}

/// The deployable filter module: cargo's release build (it is the hot path)
/// with the exports of callbacks it does not implement removed
/// (`setup::rust::build_filter`).
pub fn filter_wasm() -> PathBuf {
    overridable(ENV_FILTER_WASM, || target_dir().join("sekisho").join("sekisho_filter.wasm"))
}

/// The benchmark's do-nothing filter, built like [`filter_wasm`].
pub fn wasm_floor() -> PathBuf {
    target_dir().join("sekisho").join("sekisho_bench_wasm_floor.wasm")
}

fn overridable(var: &str, default: impl FnOnce() -> PathBuf) -> PathBuf {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => default(),
    }
}
