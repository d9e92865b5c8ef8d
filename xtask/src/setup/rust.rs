//! The Rust side of set-up: the `wasm32-wasip1` target and the builds.
//!
//! Native binaries are built in the debug profile for both `up` and `test`.
//! `cargo test` needs debug builds of every crate anyway; the release profile
//! (fat LTO, one codegen unit) costs several extra minutes on two cores and
//! would be a second full build. Only the filter is built in release: it runs
//! inside Envoy on the hot path, and `wasm32-wasip1` is a separate build anyway.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::process::{cargo, output, run};
use crate::{wasm_exports, workspace};

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

/// Callbacks the filter leaves to the SDK's empty defaults, so Envoy need not
/// enter the VM for them (see [`crate::wasm_exports`]). `proxy_on_done` and
/// `proxy_on_log` run for every request; the host treats a missing `on_done`
/// as "done". Implementing one of these in `filter/src/shell.rs` means taking
/// it off this list: `deployable_module_keeps_every_callback_the_filter_implements`
/// fails until then.
pub const UNUSED_CALLBACKS: &[&str] = &[
    "proxy_on_request_trailers",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
    "proxy_on_log",
    "proxy_on_done",
];

/// Builds `sekisho-filter` for Envoy and returns the deployable module's path.
pub fn build_filter() -> Result<PathBuf> {
    build_wasm("sekisho-filter", "sekisho_filter", &workspace::filter_wasm())
}

/// Builds the benchmark's do-nothing filter (its floor) the same way.
pub fn build_wasm_floor() -> Result<PathBuf> {
    build_wasm("sekisho-bench-wasm-floor", "sekisho_bench_wasm_floor", &workspace::wasm_floor())
}

/// Builds `package` for `wasm32-wasip1` in release and writes the module
/// without the [`UNUSED_CALLBACKS`] exports to `deployable`.
fn build_wasm(package: &str, artifact: &str, deployable: &Path) -> Result<PathBuf> {
    run(cargo().args(["build", "-p", package, "--target", WASM_TARGET, "--release"]))?;
    let built = workspace::target_dir().join(WASM_TARGET).join("release").join(format!("{artifact}.wasm"));
    let module = std::fs::read(&built)
        .with_context(|| format!("the {package} build succeeded but {} cannot be read", built.display()))?;
    let module = wasm_exports::without(&module, UNUSED_CALLBACKS)
        .with_context(|| format!("cannot rewrite the exports of {}", built.display()))?;
    if let Some(dir) = deployable.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(deployable, module).with_context(|| format!("cannot write {}", deployable.display()))?;
    Ok(deployable.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list above is only right while the filter's shell overrides none of
    /// those callbacks; a stripped callback would silently never run.
    #[test]
    fn deployable_module_keeps_every_callback_the_filter_implements() {
        let shell = std::fs::read_to_string(workspace::root().join("filter/src/shell.rs")).unwrap();
        for export in UNUSED_CALLBACKS {
            let method = export.replace("proxy_on_", "fn on_").replace("fn on_request_", "fn on_http_request_");
            let method = method.replace("fn on_response_", "fn on_http_response_");
            assert!(
                !shell.contains(&format!("{method}(")),
                "filter/src/shell.rs implements {method}, but {export} is stripped"
            );
        }
    }
}
