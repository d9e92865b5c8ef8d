//! `cargo xtask fuzz [seconds]`: runs every cargo-fuzz target in `fuzz/` for
//! the given time each (default 30 s), installing cargo-fuzz if missing.
//! libFuzzer needs nightly-only compiler flags; `RUSTC_BOOTSTRAP=1` lets the
//! stable toolchain accept them, so no second toolchain is needed.

use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use xtask::process::{cargo, describe};
use xtask::workspace;

const TARGETS: [&str; 4] = ["token", "jsonrpc", "request", "decision"];

pub fn run(args: &[String]) -> Result<ExitCode> {
    let seconds: u32 = match args.first() {
        Some(s) => s.parse().with_context(|| format!("`{s}` is not a number of seconds"))?,
        None => 30,
    };
    ensure_cargo_fuzz()?;
    let fuzz_dir = workspace::root().join("fuzz");
    for target in TARGETS {
        let mut cmd = cargo();
        cmd.current_dir(&fuzz_dir).env("RUSTC_BOOTSTRAP", "1").args([
            "fuzz",
            "run",
            target,
            "--",
            &format!("-max_total_time={seconds}"),
            "-print_final_stats=1",
        ]);
        eprintln!("==> fuzz: {}", describe(&cmd));
        let status = cmd.status().with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
        if !status.success() {
            eprintln!("fuzz target {target} failed: see fuzz/artifacts/{target}/");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ensure_cargo_fuzz() -> Result<()> {
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
