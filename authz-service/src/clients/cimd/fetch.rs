//! Fetching one Client ID Metadata Document, with the limits that keep an
//! attacker-chosen URL harmless: the name is resolved here, every address it
//! resolves to must be public, and the connection goes to one of exactly those
//! addresses (so DNS rebinding between check and use gains nothing); no
//! redirects, no proxies, a time limit and a size limit.
//!
//! A plain HTTP/1.1 GET over hyper: the one request this module makes needs
//! nothing more, and owning the connection is what makes the address check hold.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use crate::clients::cimd::address;

/// Documents are a few hundred bytes; anything this large is not one.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// For the whole fetch: resolution, connection, TLS, request and body.
pub const TIMEOUT: Duration = Duration::from_secs(5);
const USER_AGENT: &str = concat!("sekisho-authz/", env!("CARGO_PKG_VERSION"), " (client metadata)");

/// A fetched document and how long its server says it may be cached.
pub struct Fetched {
    pub body: Vec<u8>,
    pub max_age: Option<u64>,
}

/// Why a fetch failed, in words fit for an error description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

fn fail(message: impl Into<String>) -> FetchError {
    FetchError(message.into())
}

/// Makes the requests. Cheap to share.
pub struct Fetcher {
    tls: TlsConnector,
    allow_loopback: bool,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Fetcher {
    pub fn new(allow_loopback: bool) -> anyhow::Result<Fetcher> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Fetcher { tls: TlsConnector::from(Arc::new(config)), allow_loopback })
    }

    /// GETs `url` (already checked for scheme and form by the caller).
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, FetchError> {
        tokio::time::timeout(TIMEOUT, self.fetch_within_time(url))
            .await
            .map_err(|_| fail(format!("it did not answer within {} s", TIMEOUT.as_secs())))?
    }

    async fn fetch_within_time(&self, url: &Url) -> Result<Fetched, FetchError> {
        let port = url.port_or_known_default().ok_or_else(|| fail("the URL has no port"))?;
        let addresses = self.addresses(url, port).await?;
        let tcp = connect(&addresses).await?;
        let io: Box<dyn Io> = if url.scheme() == "https" {
            let name = server_name(url)?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| fail(format!("TLS failed: {e}")))?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| fail(format!("cannot talk HTTP to it: {e}")))?;
        // The connection does its I/O while the request is sent and read; it
        // ends with this fetch (the timeout drops both).
        let driver = tokio::spawn(connection);
        let outcome = request(&mut sender, url).await;
        driver.abort();
        outcome
    }

    /// Every address the URL's host resolves to, if all of them are allowed.
    async fn addresses(&self, url: &Url, port: u16) -> Result<Vec<SocketAddr>, FetchError> {
        let addresses: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| fail(format!("{name} does not resolve: {e}")))?
                .collect(),
            None => return Err(fail("the URL has no host")),
        };
        if addresses.is_empty() {
            return Err(fail("its host has no address"));
        }
        // All or nothing: a name that mixes public and private answers is
        // exactly what a rebinding attack looks like.
        if let Some(bad) = addresses.iter().find(|a| !address::is_allowed(a.ip(), self.allow_loopback)) {
            return Err(fail(format!(
                "its host resolves to {}, which is not a public address; metadata documents are fetched from the internet only",
                bad.ip()
            )));
        }
        Ok(addresses)
    }
}

async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, FetchError> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(fail(format!("cannot connect to it: {}", last.map_or_else(|| "no address".to_owned(), |e| e.to_string()))))
}

fn server_name(url: &Url) -> Result<ServerName<'static>, FetchError> {
    let name = match url.host() {
        Some(Host::Domain(d)) => ServerName::try_from(d.to_owned()).ok(),
        Some(Host::Ipv4(ip)) => Some(ServerName::from(IpAddr::V4(ip))),
        Some(Host::Ipv6(ip)) => Some(ServerName::from(IpAddr::V6(ip))),
        None => None,
    };
    name.ok_or_else(|| fail("its host is not a valid TLS server name"))
}

async fn request(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    url: &Url,
) -> Result<Fetched, FetchError> {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let request = Request::get(path)
        .header(header::HOST, host)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, USER_AGENT)
        .body(Empty::<Bytes>::new())
        .map_err(|e| fail(format!("cannot build the request: {e}")))?;
    let response = sender.send_request(request).await.map_err(|e| fail(format!("the request failed: {e}")))?;
    let status = response.status();
    if status.is_redirection() {
        return Err(fail(format!("it answered {status}; redirects are not followed")));
    }
    if status != StatusCode::OK {
        return Err(fail(format!("it answered {status}")));
    }
    let headers = response.headers();
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(fail(too_large()));
    }
    let max_age = headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
    let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                fail(too_large())
            } else {
                fail(format!("cannot read it: {e}"))
            }
        })?
        .to_bytes();
    Ok(Fetched { body: body.to_vec(), max_age })
}

fn too_large() -> String {
    format!("it is larger than {MAX_DOCUMENT_BYTES} bytes")
}

/// `max-age` of a `Cache-Control` value; `no-store` and `no-cache` mean 0.
fn max_age(value: &str) -> Option<u64> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds.trim_matches('"').parse().ok();
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age("public, max-age=600"), Some(600));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("max-age=60, no-cache"), Some(0));
        assert_eq!(max_age("public"), None);
    }

    #[tokio::test]
    async fn private_literal_and_resolved_addresses_are_refused_before_connecting() {
        let strict = Fetcher::new(false).unwrap();
        for url in [
            "https://10.0.0.1/c.json",
            "https://127.0.0.1/c.json",
            "https://[::1]/c.json",
            "https://169.254.169.254/c.json",
            "https://localhost/c.json",
        ] {
            let err = strict.fetch(&Url::parse(url).unwrap()).await.err().unwrap();
            assert!(err.0.contains("not a public address"), "{url}: {err}");
        }
        let tests = Fetcher::new(true).unwrap();
        let port = {
            // A port nobody listens on: the address passes, the connection fails.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let err = tests.fetch(&Url::parse(&format!("http://127.0.0.1:{port}/c.json")).unwrap()).await.err().unwrap();
        assert!(err.0.contains("cannot connect"), "{err}");
    }
}
