//! Envoy's resident memory with and without the filter, and what one more
//! worker (one more wasm VM) adds (SPEC P5).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use sekisho_e2e::process::{ManagedProcess, clean_command};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    /// One worker, no filter.
    pub without_filter_kib: u64,
    /// One worker, filter loaded and warmed.
    pub with_filter_kib: u64,
    /// What the second worker adds with the filter, minus what it adds without.
    pub per_worker_vm_kib: i64,
}

pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    line.split_whitespace().nth(1).context("VmRSS has no value")?.parse().context("VmRSS is not a number")
}

/// Starts Envoy four times (with/without the filter × 1/2 workers), sends each
/// some traffic, and reads its RSS.
pub fn per_worker(
    envoy: &Path,
    work: &Path,
    config: impl Fn(bool) -> String,
    url: &str,
    headers: &[(&str, String)],
) -> Result<Memory> {
    let measure = |with_filter: bool, workers: u32| -> Result<u64> {
        let path = work.join(format!("mem-{with_filter}-{workers}.yaml"));
        std::fs::write(&path, config(with_filter))?;
        let mut cmd = clean_command(envoy);
        cmd.arg("-c").arg(&path).args([
            "--concurrency",
            &workers.to_string(),
            "--disable-hot-restart",
            "--log-level",
            "warn",
        ]);
        let process = ManagedProcess::spawn(&format!("envoy-mem-{with_filter}-{workers}"), cmd, work)?;
        if with_filter {
            // Each worker's VM loads its keys on its own tick; use both.
            crate::wait_for(url, headers)?;
            let client = sekisho_e2e::http::client_builder().build()?;
            for _ in 0..200 {
                let mut req = client.post(url);
                for (k, v) in headers {
                    req = req.header(*k, v);
                }
                let _ = req.body("{}").send();
            }
        } else {
            std::thread::sleep(Duration::from_secs(2));
        }
        std::thread::sleep(Duration::from_secs(1));
        let rss = rss_kib(process.pid())?;
        drop(process);
        Ok(rss)
    };
    let without_1 = measure(false, 1)?;
    let without_2 = measure(false, 2)?;
    let with_1 = measure(true, 1)?;
    let with_2 = measure(true, 2)?;
    if with_1 == 0 {
        bail!("Envoy reported no memory");
    }
    Ok(Memory {
        without_filter_kib: without_1,
        with_filter_kib: with_1,
        per_worker_vm_kib: (with_2 as i64 - with_1 as i64) - (without_2 as i64 - without_1 as i64),
    })
}
