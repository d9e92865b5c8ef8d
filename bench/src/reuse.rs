//! Whether a run measured requests or connections: the downstream connections
//! and requests an HTTP connection manager counted, from Envoy's admin `/stats`.
//!
//! Envoy's HTTP/1 codec closes a connection whose answer went out before the
//! request was whole. A listener that answers that way turns every request
//! into a new TCP connection, and its figures into the cost of connection
//! setup. The bench refuses such a run instead of reporting it.

use anyhow::{Context, Result, bail};

/// Fewer requests per connection than this, and the run does not count. With
/// keep-alive a run carries thousands per connection; one that closes after
/// every answer carries one.
pub const MIN_REQUESTS_PER_CONNECTION: u64 = 10;

/// Counters of one connection manager (its `stat_prefix`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub connections: u64,
    pub requests: u64,
}

impl Traffic {
    /// Reads `http.<prefix>.downstream_cx_total` and `downstream_rq_total`.
    pub fn read(admin_port: u16, prefix: &str) -> Result<Traffic> {
        let url = format!("http://127.0.0.1:{admin_port}/stats?filter=^http\\.{prefix}\\.downstream_(cx|rq)_total$");
        let text = reqwest::blocking::get(&url)
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.text())
            .with_context(|| format!("reading Envoy's stats for {prefix}"))?;
        Traffic::parse(&text, prefix)
    }

    fn parse(text: &str, prefix: &str) -> Result<Traffic> {
        let counter = |name: &str| -> Result<u64> {
            let key = format!("http.{prefix}.{name}: ");
            let line = text.lines().find_map(|l| l.strip_prefix(&key));
            line.and_then(|v| v.trim().parse().ok()).with_context(|| format!("Envoy's stats have no {key}"))
        };
        Ok(Traffic { connections: counter("downstream_cx_total")?, requests: counter("downstream_rq_total")? })
    }

    /// Fails unless the traffic since `before` kept its connections.
    pub fn check_reuse_since(&self, before: Traffic, listener: &str) -> Result<()> {
        let connections = self.connections.saturating_sub(before.connections);
        let requests = self.requests.saturating_sub(before.requests);
        if requests < MIN_REQUESTS_PER_CONNECTION * connections.max(1) {
            bail!(
                "{listener}: {requests} requests over {connections} connections: Envoy closed connections, \
                 so the run measured connection setup, not requests; it does not count"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "http.sekisho.downstream_cx_total: 32\nhttp.sekisho.downstream_rq_total: 51234\n";

    #[test]
    fn reads_the_two_counters_of_its_prefix_only() {
        let t = Traffic::parse(STATS, "sekisho").unwrap();
        assert_eq!(t, Traffic { connections: 32, requests: 51234 });
        assert!(Traffic::parse(STATS, "no_auth").is_err());
    }

    #[test]
    fn a_run_of_one_request_per_connection_does_not_count() {
        let before = Traffic { connections: 10, requests: 100 };
        let kept = Traffic { connections: 42, requests: 50_100 };
        assert!(kept.check_reuse_since(before, "no_auth").is_ok());
        let closed = Traffic { connections: 5_010, requests: 5_100 };
        let err = closed.check_reuse_since(before, "no_auth").unwrap_err().to_string();
        assert!(err.contains("5000 requests over 5000 connections"), "{err}");
    }
}
