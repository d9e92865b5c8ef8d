//! `cargo xtask bench [flags]`: set up, then run `sekisho-bench` (built with
//! optimisations: it signs tens of thousands of tokens for the cold path).
//! Flags go to the benchmark (`cargo xtask bench -- --help`).

use std::process::ExitCode;

use anyhow::{Context, Result};
use xtask::process::{cargo, describe};
use xtask::setup;

pub fn run(args: &[String]) -> Result<ExitCode> {
    let tools = setup::all()?;
    let args = if args.first().map(String::as_str) == Some("--") { &args[1..] } else { args };
    let mut cmd = cargo();
    cmd.args(["run", "--release", "--package", "sekisho-bench", "--"]).args(args);
    for (name, path) in tools.env() {
        cmd.env(name, path);
    }
    eprintln!("==> bench: {}", describe(&cmd));
    let status = cmd.status().with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
