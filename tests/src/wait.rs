//! Waiting for a started process to become ready, failing fast (with its log)
//! if it exits instead.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::process::ManagedProcess;

const POLL: Duration = Duration::from_millis(50);

/// Polls `ready` until it returns `Ok(true)`. Fails when `process` exits or
/// `timeout` passes, quoting the last probe error and the process's log.
pub fn until(
    process: &mut ManagedProcess,
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let last = match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => "not ready".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        if let Some(status) = process.exited() {
            bail!("{} exited ({status}) before {what}\n{}", process.name(), process.log_tail(40));
        }
        if start.elapsed() > timeout {
            bail!("{what}: still not ready after {timeout:?} (last probe: {last})\n{}", process.log_tail(40));
        }
        std::thread::sleep(POLL);
    }
}
