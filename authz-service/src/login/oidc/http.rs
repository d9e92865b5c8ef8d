//! The HTTP requests to the upstream provider: GET (discovery, JWKS) and a
//! form POST (token endpoint), one connection each, bounded in time and size.
//! Plain hyper over rustls (ring, webpki roots), as `clients::cimd` does; the
//! provider is the operator's choice, so no address filtering here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use url::{Host, Url};

pub const TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY_BYTES: usize = 256 * 1024;
const USER_AGENT: &str = concat!("sekisho-authz/", env!("CARGO_PKG_VERSION"));

/// The provider could not be reached or did not answer HTTP: an outage.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub struct Client {
    tls: TlsConnector,
}

impl Client {
    pub fn new() -> anyhow::Result<Client> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client { tls: TlsConnector::from(Arc::new(config)) })
    }

    pub async fn get(&self, url: &Url) -> Result<Answer, Unreachable> {
        self.send(Method::GET, url, None, None).await
    }

    /// POSTs `form` (already encoded), with an `Authorization` header if given.
    pub async fn post_form(
        &self,
        url: &Url,
        form: String,
        authorization: Option<String>,
    ) -> Result<Answer, Unreachable> {
        self.send(Method::POST, url, Some(form), authorization).await
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        form: Option<String>,
        authorization: Option<String>,
    ) -> Result<Answer, Unreachable> {
        tokio::time::timeout(TIMEOUT, self.send_within_time(method, url, form, authorization))
            .await
            .map_err(|_| Unreachable(format!("no answer within {} s", TIMEOUT.as_secs())))?
    }

    async fn send_within_time(
        &self,
        method: Method,
        url: &Url,
        form: Option<String>,
        authorization: Option<String>,
    ) -> Result<Answer, Unreachable> {
        let port = url.port_or_known_default().ok_or_else(|| Unreachable("the URL has no port".into()))?;
        let host = url.host_str().ok_or_else(|| Unreachable("the URL has no host".into()))?;
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .map_err(|e| Unreachable(format!("{host} does not resolve: {e}")))?
            .collect();
        let mut tcp = None;
        let mut last = None;
        for address in &addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            Unreachable(format!("cannot connect: {}", last.map_or_else(|| "no address".to_owned(), |e| e.to_string())))
        })?;
        let io: Box<dyn Io> = match url.scheme() {
            "https" => {
                let name = match url.host() {
                    Some(Host::Domain(d)) => ServerName::try_from(d.to_owned()).ok(),
                    Some(Host::Ipv4(ip)) => Some(ServerName::IpAddress(std::net::IpAddr::V4(ip).into())),
                    Some(Host::Ipv6(ip)) => Some(ServerName::IpAddress(std::net::IpAddr::V6(ip).into())),
                    None => None,
                }
                .ok_or_else(|| Unreachable("the host is not a valid TLS server name".into()))?;
                Box::new(self.tls.connect(name, tcp).await.map_err(|e| Unreachable(format!("TLS failed: {e}")))?)
            }
            _ => Box::new(tcp),
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| Unreachable(format!("cannot talk HTTP: {e}")))?;
        let driver = tokio::spawn(connection);
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, host_header)
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, USER_AGENT);
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|e| Unreachable(format!("cannot build the request: {e}")))?;
        let outcome = async {
            let response =
                sender.send_request(request).await.map_err(|e| Unreachable(format!("the request failed: {e}")))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| Unreachable(format!("cannot read the answer: {e}")))?
                .to_bytes();
            Ok(Answer { status, body: body.to_vec() })
        }
        .await;
        driver.abort();
        outcome
    }
}
