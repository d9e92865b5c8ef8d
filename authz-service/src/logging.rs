//! Logging with `tracing`: text for people, JSON (`SEKISHO_LOG_FORMAT=json`)
//! for log pipelines, filtered by `RUST_LOG`. Logs go to stderr, so CLI output
//! on stdout (a minted token, a JSON listing) stays clean.
//!
//! Nothing in this crate logs a token, key or secret: types that hold one
//! (`AdminToken`, `MasterKey`, `Signer`, `IssuedAccessToken`) redact
//! themselves in `Debug`, and HTTP spans record the path without the query.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; `default_directives` applies when `RUST_LOG` is unset.
pub fn init(format: LogFormat, default_directives: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_directives));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Fails only if a subscriber is already installed (tests); keep that one.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}
