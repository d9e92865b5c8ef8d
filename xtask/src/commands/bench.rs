//! `cargo xtask bench [flags]`: set up, then run `sekisho-bench` against an
//! optimised `sekisho-authz` (the `perf` profile: the bench signs tens of
//! thousands of tokens for the cold path, and the service is measured).
//! Flags go to the benchmark (`cargo xtask bench -- --help`).

use std::process::ExitCode;

use anyhow::{Context, Result};
use xtask::process::{cargo, describe};
use xtask::setup;

pub fn run(args: &[String]) -> Result<ExitCode> {
    let tools = setup::all()?;
    // The load generator (SPEC P1: an established one), and taskset to pin it.
    if setup::on_path("wrk").is_none() {
        setup::apt::install(&["wrk"], "the benchmark's load generator")?;
    }
    setup::rust::build_wasm_floor()?;
    let args = if args.first().map(String::as_str) == Some("--") { &args[1..] } else { args };
    // `--instructions` runs Envoy under valgrind's callgrind.
    if args.iter().any(|a| a == "--instructions") && setup::on_path("callgrind_control").is_none() {
        setup::apt::install(&["valgrind"], "counting instructions (`--instructions`)")?;
    }
    // The service is measured optimised (the stack and the tests run a debug build).
    xtask::process::run(cargo().args(["build", "--profile", "perf", "--package", "sekisho-authz"]))?;
    let authz = xtask::workspace::target_dir().join("perf").join("sekisho-authz");
    let mut cmd = cargo();
    cmd.args(["run", "--profile", "perf", "--package", "sekisho-bench", "--"]).args(args);
    for (name, path) in tools.env() {
        cmd.env(name, path);
    }
    cmd.env(xtask::workspace::ENV_AUTHZ_BIN, &authz);
    eprintln!("==> bench: {}", describe(&cmd));
    let status = cmd.status().with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
