//! Faults a test can inflict on a running stack beyond stopping the service:
//! `kill -9` of the service, and a restart of Envoy on the same
//! configuration and ports (`tests/faults.rs`, `tests/soak.rs`).

use anyhow::{Context, Result, bail};

use crate::stack::{HEALTH_TIMEOUT, Stack};
use crate::wait;

impl Stack {
    /// `kill -9` of the service: no graceful shutdown, in-flight requests cut
    /// mid-transaction. [`start_authz`](Stack::start_authz) starts it again.
    pub fn kill_authz(&mut self) -> Result<()> {
        let Some(mut authz) = self.authz.take() else { bail!("sekisho-authz is not running") };
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(authz.pid() as libc::pid_t, libc::SIGKILL);
        }
        // Reaps it (and sweeps its process group).
        authz.stop();
        Ok(())
    }

    /// The service's process id while it runs.
    pub fn authz_pid(&self) -> Option<u32> {
        self.authz.as_ref().map(|authz| authz.pid())
    }

    /// Stops Envoy (the filter's VMs and their state go with it).
    pub fn stop_envoy(&mut self) {
        if let Some(mut envoy) = self.envoy.take() {
            envoy.stop();
        }
    }

    /// Starts Envoy again on the same configuration; waits for `/ready` only,
    /// not for the filter to load keys (that is what a test watches).
    pub fn start_envoy(&mut self) -> Result<()> {
        if self.envoy.is_some() {
            bail!("Envoy is already running");
        }
        let mut envoy = self.spawn_envoy(&self.envoy_config_path())?;
        let ready_url = format!("{}/ready", self.envoy_admin_url());
        wait::until(&mut envoy, "Envoy is ready", HEALTH_TIMEOUT, || Ok(self.is_ok(&ready_url).unwrap_or(false)))?;
        self.envoy = Some(envoy);
        Ok(())
    }

    /// Envoy's resident set size, from `/proc/<pid>/status`.
    pub fn envoy_rss_kib(&self) -> Result<u64> {
        let Some(envoy) = &self.envoy else { bail!("Envoy is not running") };
        let status = std::fs::read_to_string(format!("/proc/{}/status", envoy.pid())).context("reading /proc")?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS in /proc/<pid>/status")?;
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).context("VmRSS is not a number")
    }
}
