//! The HTTP client every part of the harness uses to reach a stack.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::blocking::{Client, ClientBuilder};

/// Every answer through the stack is quick (SSE answers to POSTs end with the
/// response); a request still open after this is a hang worth failing on.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client builder for loopback: no proxy (a developer's or CI's
/// `HTTP_PROXY` must not see test traffic), no redirects, a short timeout.
pub fn client_builder() -> ClientBuilder {
    // Whichever crate's features reqwest was built with, building a client
    // must not panic for want of a TLS crypto provider. Installing fails only
    // when one is installed already, which is just as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().no_proxy().timeout(REQUEST_TIMEOUT).redirect(reqwest::redirect::Policy::none())
}

/// A [`client_builder`] client for a stack with TLS: it trusts the CA in
/// `ca_pem` and no other, so a certificate the stack did not make fails.
pub fn client_trusting(ca_pem: &Path) -> Result<Client> {
    let pem = std::fs::read(ca_pem).with_context(|| format!("cannot read {}", ca_pem.display()))?;
    let ca = reqwest::Certificate::from_pem(&pem)
        .with_context(|| format!("{} is not a PEM certificate", ca_pem.display()))?;
    client_builder().tls_certs_only([ca]).build().context("cannot build the HTTPS client")
}
