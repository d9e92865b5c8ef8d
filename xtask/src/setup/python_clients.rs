//! The Python MCP SDK for the real-client tests, and schemathesis for the
//! test of the service's OpenAPI document: a virtualenv of its own,
//! `.sekisho/clients-venv`, with `tests/clients/python/requirements.txt`
//! (every package pinned) installed from PyPI.
//!
//! A second venv rather than Envoy's: the two are installed and upgraded for
//! different reasons, and a failed SDK install must not touch Envoy. The
//! venv remembers the requirements it was installed from (a copy of the file,
//! `.sekisho-requirements.txt`); when they differ it is installed again.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{output, run};
use crate::workspace;

/// The pinned requirements.
pub fn requirements() -> PathBuf {
    workspace::clients_dir().join("python").join("requirements.txt")
}

pub fn venv_dir() -> PathBuf {
    workspace::state_dir().join("clients-venv")
}

fn stamp() -> PathBuf {
    venv_dir().join(".sekisho-requirements.txt")
}

fn venv_python() -> PathBuf {
    venv_dir().join("bin").join("python")
}

/// The interpreter with the SDK installed, without installing anything:
/// `$SEKISHO_CLIENTS_PYTHON`, else the venv's, if it was installed from the
/// current requirements.
pub fn find() -> Result<PathBuf> {
    if let Some(explicit) = std::env::var_os(workspace::ENV_CLIENTS_PYTHON).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(explicit));
    }
    let python = venv_python();
    if !python.is_file() {
        bail!("{} does not exist", python.display());
    }
    if !is_current()? {
        bail!("{} was installed from other requirements than {}", venv_dir().display(), requirements().display());
    }
    Ok(python)
}

fn is_current() -> Result<bool> {
    let wanted = std::fs::read(requirements()).with_context(|| format!("cannot read {}", requirements().display()))?;
    Ok(std::fs::read(stamp()).is_ok_and(|installed| installed == wanted))
}

/// [`find`], or (re)install the venv and return its interpreter.
pub fn ensure() -> Result<PathBuf> {
    if let Ok(python) = find() {
        eprintln!("    {} ({})", python.display(), sdk_version(&python).unwrap_or_else(|e| format!("{e:#}")));
        return Ok(python);
    }
    let venv = venv_dir();
    let python = venv_python();
    if !python.is_file() {
        eprintln!("    creating {}", venv.display());
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
            .context("the Python client tests need python3 with venv (Debian: apt-get install python3-venv)")?;
    }
    eprintln!("    pip install -r {}", requirements().display());
    run(Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements()))?;
    std::fs::copy(requirements(), stamp()).with_context(|| format!("cannot write {}", stamp().display()))?;
    eprintln!("    {} ({})", python.display(), sdk_version(&python)?);
    Ok(python)
}

/// `mcp 2.3.0, schemathesis 4.32.5`, as the interpreter sees them.
pub fn sdk_version(python: &std::path::Path) -> Result<String> {
    let script =
        "import importlib.metadata as m; print(', '.join(p + ' ' + m.version(p) for p in ('mcp', 'schemathesis')))";
    let out = output(Command::new(python).args(["-c", script]))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
