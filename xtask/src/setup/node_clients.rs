//! Node.js and the npm packages of `tests/clients/node` (the MCP TypeScript
//! SDK, playwright-core), installed with `npm ci` from the committed
//! `package-lock.json`.
//!
//! Node comes from the machine (`$SEKISHO_NODE`, else `node` on `PATH`); on a
//! Debian machine without it, set-up installs Debian's `nodejs` and `npm`
//! when it runs as root. `node_modules` remembers the lock it was installed
//! from (a copy, `node_modules/.sekisho-package-lock.json`); `npm ci` runs
//! again when the lock changed or `node_modules` is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{describe, output, run};
use crate::setup::{apt, on_path};
use crate::workspace;

/// The oldest Node the TypeScript SDK 1.x supports.
pub const MIN_NODE_MAJOR: u32 = 18;

pub fn dir() -> PathBuf {
    workspace::clients_dir().join("node")
}

fn lock() -> PathBuf {
    dir().join("package-lock.json")
}

fn stamp() -> PathBuf {
    dir().join("node_modules").join(".sekisho-package-lock.json")
}

/// Node with the packages installed from the current lock, without
/// installing anything.
pub fn find() -> Result<PathBuf> {
    let node = find_node()?;
    if !is_current()? {
        bail!("{} is missing or was installed from another package-lock.json", dir().join("node_modules").display());
    }
    Ok(node)
}

/// A Node that runs and is new enough.
pub fn find_node() -> Result<PathBuf> {
    let node = match std::env::var_os(workspace::ENV_NODE).filter(|v| !v.is_empty()) {
        Some(explicit) => PathBuf::from(explicit),
        None => on_path("node").context("no `node` on PATH")?,
    };
    let major = major_version(&node)?;
    if major < MIN_NODE_MAJOR {
        bail!("{} is Node {major}; the clients need Node {MIN_NODE_MAJOR} or newer", node.display());
    }
    Ok(node)
}

fn is_current() -> Result<bool> {
    let wanted = std::fs::read(lock()).with_context(|| format!("cannot read {}", lock().display()))?;
    Ok(std::fs::read(stamp()).is_ok_and(|installed| installed == wanted))
}

/// [`find`], or install what is missing (Node from Debian if need be, then
/// `npm ci`) and return the Node binary.
pub fn ensure() -> Result<PathBuf> {
    let node = match find_node() {
        Ok(node) => node,
        Err(_) if std::env::var_os(workspace::ENV_NODE).is_none_or(|v| v.is_empty()) => {
            apt::install(&["nodejs", "npm"], "Node.js for the TypeScript SDK and browser tests")?;
            find_node()?
        }
        Err(e) => return Err(e),
    };
    eprintln!("    {} (v{})", node.display(), version(&node)?);
    if is_current()? {
        return Ok(node);
    }
    // npm next to the Node we use, else the one on PATH.
    let npm = node.parent().map(|d| d.join("npm")).filter(|p| p.is_file()).or_else(|| on_path("npm"));
    let Some(npm) = npm else {
        bail!("no `npm` next to {} or on PATH", node.display());
    };
    let mut cmd = Command::new(&npm);
    cmd.args(["ci", "--no-audit", "--no-fund"]).current_dir(dir());
    // npm's scripts find this Node first.
    if let Some(bin) = node.parent() {
        cmd.env("PATH", prepend_path(bin));
    }
    eprintln!("    {} (in {})", describe(&cmd), dir().display());
    run(&mut cmd)?;
    std::fs::copy(lock(), stamp()).with_context(|| format!("cannot write {}", stamp().display()))?;
    Ok(node)
}

/// `20.20.2`.
pub fn version(node: &Path) -> Result<String> {
    let out = output(Command::new(node).arg("--version"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().trim_start_matches('v').to_owned())
}

fn major_version(node: &Path) -> Result<u32> {
    let v = version(node)?;
    v.split('.').next().and_then(|m| m.parse().ok()).with_context(|| format!("cannot read Node's version {v:?}"))
}

fn prepend_path(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}
