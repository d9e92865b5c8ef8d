//! CPU time a server spent, read from Linux's per-thread scheduler statistics.
//!
//! Throughput alone mixes the server's cost with the load generator's and with
//! whatever else the machine does; CPU time per request is the server's own
//! cost, and it is what a filter adds to Envoy. `/proc/<pid>/task/*/schedstat`
//! counts nanoseconds on the CPU per thread (`/proc/<pid>/stat` counts 10 ms
//! ticks, too coarse for a few seconds of load).

use std::time::Duration;

use anyhow::{Context, Result};

/// Time on the CPU of every current thread of `pid`, summed.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let dir = format!("/proc/{pid}/task");
    let mut total = 0u64;
    for task in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let path = task?.path().join("schedstat");
        // A thread may end between listing and reading: it no longer counts.
        if let Ok(text) = std::fs::read_to_string(&path) {
            total += on_cpu_ns(&text).with_context(|| format!("reading {}", path.display()))?;
        }
    }
    Ok(Duration::from_nanos(total))
}

/// The first field of a `schedstat` line: nanoseconds spent on the CPU.
fn on_cpu_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// CPU time per request, in microseconds, between two readings.
pub fn per_request_us(before: Duration, after: Duration, requests: u64) -> Option<f64> {
    (requests > 0 && after >= before).then(|| (after - before).as_secs_f64() * 1e6 / requests as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_on_cpu_field() {
        assert_eq!(on_cpu_ns("8405162713 120331 5422\n"), Some(8_405_162_713));
        assert_eq!(on_cpu_ns(""), None);
        assert_eq!(on_cpu_ns("x 1 2"), None);
    }

    #[test]
    fn per_request_divides_the_difference() {
        let us = per_request_us(Duration::from_millis(100), Duration::from_millis(400), 3000).unwrap();
        assert!((us - 100.0).abs() < 1e-9, "{us}");
        assert_eq!(per_request_us(Duration::ZERO, Duration::from_secs(1), 0), None);
    }

    #[test]
    fn this_process_has_spent_some_cpu() {
        let spin = (0..2_000_000u64).fold(0u64, |a, b| a.wrapping_add(b * b));
        assert_ne!(spin, 1);
        assert!(cpu_time(std::process::id()).unwrap() > Duration::ZERO);
    }
}
