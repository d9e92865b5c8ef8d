//! The four loopback ports a stack listens on.

use std::net::TcpListener;

use anyhow::{Context, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Envoy's public listener: the base URL and issuer.
    pub envoy: u16,
    /// Envoy's admin interface.
    pub envoy_admin: u16,
    /// `sekisho-authz`, reached directly only by Envoy and the harness.
    pub authz: u16,
    /// The demo MCP server.
    pub demo: u16,
}

impl Ports {
    /// What `cargo xtask up` uses unless told otherwise.
    pub const UP_DEFAULTS: Ports = Ports { envoy: 8080, envoy_admin: 9901, authz: 9000, demo: 9100 };

    /// Four distinct ports that are free right now. All four are held until all
    /// are chosen, so they differ; another program could still take one before
    /// the stack binds it, which start-up then reports as a process that exited.
    pub fn free() -> Result<Ports> {
        let listeners = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<Vec<_>, _>>()
            .context("cannot bind a free loopback port")?;
        let port = |i: usize| -> Result<u16> { Ok(listeners[i].local_addr().context("reading a bound port")?.port()) };
        Ok(Ports { envoy: port(0)?, envoy_admin: port(1)?, authz: port(2)?, demo: port(3)? })
    }
}

/// `count` distinct loopback ports that are free right now (further service
/// replicas), with the same caveat as [`Ports::free`].
pub fn free_ports(count: usize) -> Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .context("cannot bind a free loopback port")?;
    listeners.iter().map(|l| Ok(l.local_addr().context("reading a bound port")?.port())).collect()
}
