//! Chromium for the consent-page test: Debian's `chromium` package at
//! `/usr/bin/chromium` (or `$SEKISHO_CHROMIUM`), driven by playwright-core.
//! Playwright's own browser download cannot work here; Debian's build can be
//! installed with apt, which set-up does when it runs as root.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};

use crate::process::output;
use crate::setup::apt;
use crate::workspace;

pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The Chromium to drive, without installing anything.
pub fn find() -> Result<PathBuf> {
    let chromium = match std::env::var_os(workspace::ENV_CHROMIUM).filter(|v| !v.is_empty()) {
        Some(explicit) => PathBuf::from(explicit),
        None => PathBuf::from(DEFAULT_CHROMIUM),
    };
    if !chromium.is_file() {
        bail!("{} does not exist", chromium.display());
    }
    Ok(chromium)
}

/// [`find`], or `apt-get install chromium`.
pub fn ensure() -> Result<PathBuf> {
    let chromium = match find() {
        Ok(chromium) => chromium,
        Err(_) if std::env::var_os(workspace::ENV_CHROMIUM).is_none_or(|v| v.is_empty()) => {
            apt::install(&["chromium"], "Chromium for the consent-page browser test")?;
            find()?
        }
        Err(e) => return Err(e),
    };
    eprintln!("    {} ({})", chromium.display(), version(&chromium));
    Ok(chromium)
}

/// `Chromium 156.0.8078.73 …`, or why not.
fn version(chromium: &std::path::Path) -> String {
    match output(Command::new(chromium).arg("--version")) {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(e) => format!("version unknown: {e:#}"),
    }
}
