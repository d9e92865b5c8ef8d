//! The Rust side of set-up: the `wasm32-wasip1` target and the builds.
//!
//! Native binaries are built in the debug profile for both `up` and `test`.
//! `cargo test` needs debug builds of every crate anyway; the release profile
//! (fat LTO, one codegen unit) costs several extra minutes on two cores and
//! would be a second full build. Only the filter is built in release: it runs
//! inside Envoy on the hot path, and `wasm32-wasip1` is a separate build anyway.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::process::{cargo, output, run};
use crate::workspace;

/// The filter's target. Not `wasm32-unknown-unknown`: there, getrandom and
/// friends pull in wasm-bindgen imports that Envoy refuses.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// `rustup target add wasm32-wasip1` unless it is installed already.
pub fn ensure_wasm_target() -> Result<()> {
    let installed = output(std::process::Command::new("rustup").args(["target", "list", "--installed"]))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|t| t.trim() == WASM_TARGET) {
        return Ok(());
    }
    run(std::process::Command::new("rustup").args(["target", "add", WASM_TARGET]))
}

/// Builds every binary and test target of the workspace.
///
/// The same target selection as `cargo test --workspace` (tests enable
/// dev-dependency features), so the following test run reuses every artifact
/// and the binaries the stack runs are the ones the tests were built against.
pub fn build_workspace() -> Result<()> {
    run(cargo().args(["build", "--workspace", "--bins", "--tests"]))
}

/// Builds `sekisho-filter` for Envoy and returns the module's path.
pub fn build_filter() -> Result<PathBuf> {
    run(cargo().args(["build", "-p", "sekisho-filter", "--target", WASM_TARGET, "--release"]))?;
    let wasm = workspace::filter_wasm();
    if !wasm.is_file() {
        bail!("the filter build succeeded but {} does not exist (is sekisho-filter a cdylib?)", wasm.display());
    }
    Ok(wasm)
}
