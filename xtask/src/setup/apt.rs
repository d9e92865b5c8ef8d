//! Installing Debian packages that set-up needs and the machine lacks:
//! `apt-get update`, then `apt-get install -y`, as root only. Anyone else is
//! told which packages to install.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{output, run};

/// Installs `packages` (needed for `why`), or fails saying how to.
pub fn install(packages: &[&str], why: &str) -> Result<()> {
    let list = packages.join(" ");
    if !is_root() {
        bail!("{why} needs the Debian packages `{list}`: install them (sudo apt-get install -y {list}) and run again");
    }
    if super::on_path("apt-get").is_none() {
        bail!("{why} needs `{list}`, and there is no apt-get here to install them: install them and run again");
    }
    eprintln!("    apt-get install -y {list} ({why})");
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    run(&mut apt(&["update", "-q"])).context("apt-get update failed")?;
    let mut install = apt(&["install", "-y", "-q"]);
    install.args(packages);
    run(&mut install).with_context(|| format!("could not install `{list}` for {why}"))
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
