//! `cargo xtask fuzz [seconds]`: runs every cargo-fuzz target in `fuzz/` for
//! the given time each (default 30 s), installing cargo-fuzz if missing.
//! libFuzzer needs nightly-only compiler flags; `RUSTC_BOOTSTRAP=1` lets the
//! stable toolchain accept them, so no second toolchain is needed.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use xtask::process::{cargo, describe};
use xtask::workspace;

/// The filter's token, header and query, JSON-RPC and decision parsing; the
/// service's request parsing.
pub const TARGETS: [&str; 5] = ["token", "jsonrpc", "request", "decision", "service_request"];

pub fn run(args: &[String]) -> Result<ExitCode> {
    let seconds: u32 = match args.first() {
        Some(s) => s.parse().with_context(|| format!("`{s}` is not a number of seconds"))?,
        None => 30,
    };
    ensure_cargo_fuzz()?;
    for target in TARGETS {
        let mut cmd = command(target, seconds);
        eprintln!("==> fuzz: {}", describe(&cmd));
        let status = cmd.status().with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
        if !status.success() {
            eprintln!("fuzz target {target} failed: see fuzz/artifacts/{target}/");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `cargo fuzz run <target>` for `seconds`, printing libFuzzer's final stats.
pub fn command(target: &str, seconds: u32) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(workspace::root().join("fuzz")).env("RUSTC_BOOTSTRAP", "1").args([
        "fuzz",
        "run",
        target,
        "--",
        &format!("-max_total_time={seconds}"),
        "-print_final_stats=1",
    ]);
    cmd
}

pub fn ensure_cargo_fuzz() -> Result<()> {
    let have = Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if have {
        return Ok(());
    }
    let mut install = cargo();
    install.args(["install", "cargo-fuzz", "--locked"]);
    eprintln!("==> setup: {}", describe(&install));
    if !install.status().context("cannot run cargo install")?.success() {
        bail!("installing cargo-fuzz failed");
    }
    Ok(())
}
