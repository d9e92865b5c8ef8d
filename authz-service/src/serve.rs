//! `sekisho-authz serve`: the HTTP service, until SIGINT or SIGTERM.
//!
//! Shutdown is graceful: the listener stops accepting, requests in flight
//! finish, pending API key usage is written, then the database pool is closed
//! (which also checkpoints SQLite's WAL). A write either committed before that
//! or never started. Requests get [`SHUTDOWN_GRACE`] to finish; whatever is
//! still running then is cut off (a transaction not committed is rolled back)
//! so that a stuck client cannot hold the process past its orchestrator's
//! patience (Kubernetes kills after 30 s).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::api_keys::activity;
use crate::app::App;
use crate::config::DatabaseKind;
use crate::http;
use crate::keys;

/// How long requests in flight may take to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

pub async fn run(app: App) -> anyhow::Result<()> {
    let config = app.config.clone();
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (SEKISHO_LISTEN)", config.listen))?;
    let reloader =
        keys::reload::spawn(app.db.clone(), app.cipher.clone(), app.keys.clone(), config.key_reload_interval);
    let usage_flusher =
        activity::spawn(app.api_key_activity.clone(), app.db.clone(), config.api_keys.usage_flush_interval);
    if config.admin_token.is_none() {
        tracing::info!("admin API disabled: SEKISHO_ADMIN_TOKEN is not set");
    }
    let database = match config.database_kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    };
    tracing::info!(
        listen = %config.listen,
        issuer = config.issuer.as_str(),
        database,
        signing_kid = app.keys.current().signer().kid(),
        "sekisho-authz listening"
    );

    let router = http::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let signalled = Arc::new(Notify::new());
    let signal = signalled.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown_signal().await;
        signal.notify_one();
    });
    let served = tokio::select! {
        served = async { server.await } => served,
        () = async {
            signalled.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!(grace_secs = SHUTDOWN_GRACE.as_secs(), "requests still in flight after the grace period; stopping anyway");
            Ok(())
        }
    };

    if let Some(reloader) = reloader {
        reloader.abort();
    }
    usage_flusher.stop().await;
    app.db.close().await;
    served.context("HTTP server failed")?;
    tracing::info!("sekisho-authz stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received; finishing requests in flight"),
        () = terminate => tracing::info!("SIGTERM received; finishing requests in flight"),
    }
}
