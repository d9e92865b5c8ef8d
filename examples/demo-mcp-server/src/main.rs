//! `sekisho-demo-mcp`: a small MCP server (Streamable HTTP) that stands
//! upstream of Envoy in the gateway tests and the local stack.
//!
//! This file holds the command line and the HTTP wiring; the tools are in
//! `tools.rs`. The MCP endpoint is `/mcp/{instance}` for any instance id,
//! because Envoy forwards the client's path unchanged; `/healthz` is for
//! readiness checks.

mod tools;

use std::{io::IsTerminal, net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{Router, routing::get};
use clap::Parser;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use tracing_subscriber::EnvFilter;

/// The Host names rmcp accepts by default. Listed here because a request
/// whose Host is not in the list gets 403 before reaching any tool, and Envoy
/// forwards the client's Host; a name without a port matches any port.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

#[derive(Debug, Parser)]
#[command(version, about = "Demo MCP server used upstream of the Sekisho gateway")]
struct Cli {
    /// Address to listen on, e.g. 127.0.0.1:8931 (port 0 picks a free port).
    #[arg(long, env = "DEMO_MCP_LISTEN")]
    listen: SocketAddr,

    /// Host names to accept besides the loopback ones (for a container name
    /// or a Host header rewritten by Envoy). Repeatable; comma-separated in the env.
    #[arg(long = "allowed-host", env = "DEMO_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr so stdout carries only the "listening" line; no colour
    // codes when a test harness or container captures them into a file.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let cli = Cli::parse();

    let allowed_hosts: Vec<String> =
        LOOPBACK_HOSTS.iter().map(|host| (*host).to_owned()).chain(cli.allowed_hosts).collect();
    // Stateful sessions (Mcp-Session-Id) are the SDK default; kept explicit
    // because the gateway tests rely on them.
    let config = StreamableHttpServerConfig::default().with_legacy_session_mode(true).with_allowed_hosts(allowed_hosts);
    // Cancelling this closes open SSE streams; without it a client holding
    // the GET stream open would keep graceful shutdown waiting forever.
    let sessions_token = config.cancellation_token.clone();

    let notes = tools::Notes::default();
    let mcp = StreamableHttpService::new(
        move || Ok(tools::DemoServer::new(notes.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );

    // `route_service` (not `nest_service`) keeps the full path in the request,
    // which is where the tools read the instance id from.
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route_service(&format!("{}{{instance}}", tools::MCP_PATH_PREFIX), mcp);

    let listener =
        tokio::net::TcpListener::bind(cli.listen).await.with_context(|| format!("binding {}", cli.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    // The bound address, not the requested one, so `--listen 127.0.0.1:0` is usable.
    println!("demo-mcp listening on http://{addr}");

    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            sessions_token.cancel();
        })
        .await
        .context("serving")?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM (the latter is what containers get).
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
