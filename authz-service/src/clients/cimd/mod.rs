//! Client ID Metadata Documents (SPEC A4; MCP 2025-11-25 and 2026-07-28,
//! draft-ietf-oauth-client-id-metadata-document): a client whose `client_id`
//! is an https URL describes itself in the JSON document at that URL.
//!
//! The document is fetched when the client first shows up (authorization or
//! token request), checked — its `client_id` must equal the URL exactly, its
//! redirect URIs pass the same rules as registered ones, it is a public client —
//! and cached in memory for `SEKISHO_CIMD_CACHE_TTL` (less if its
//! `Cache-Control` says so). A failed fetch is remembered briefly, so a client
//! retrying in a loop does not make us fetch in a loop. Each replica has its
//! own cache; nothing is stored in the database.
//!
//! `SEKISHO_CIMD_ALLOW_LOOPBACK=1` (development only) lets tests serve
//! documents from a local server over plain http.

mod address;
mod fetch;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use url::{Host, Url};

use crate::clients::metadata::{self, ClientMetadata, Registrar, RegistrationRequest};
use crate::config::OAuthConfig;
use crate::error::{Error, Result};

/// How long a failure is remembered.
const FAILURE_TTL: Duration = Duration::from_secs(10);
/// Bound on the cache; past it, expired entries go, and if that is not enough, all.
const MAX_ENTRIES: usize = 1024;
/// Longest `client_id` URL we consider.
const MAX_URL: usize = 2000;

pub struct Resolver {
    fetcher: fetch::Fetcher,
    allow_loopback: bool,
    ttl: Duration,
    cache: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    outcome: std::result::Result<ClientMetadata, String>,
    until: Instant,
}

impl Resolver {
    pub fn new(config: &OAuthConfig) -> anyhow::Result<Resolver> {
        Ok(Resolver {
            fetcher: fetch::Fetcher::new(config.cimd_allow_loopback)?,
            allow_loopback: config.cimd_allow_loopback,
            ttl: Duration::from_secs(u64::try_from(config.cimd_cache_ttl).unwrap_or(0)),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether `client_id` is meant as a metadata document URL (rather than
    /// the id of a registered client, which is never a URL).
    pub fn is_document_url(client_id: &str) -> bool {
        client_id.starts_with("https://") || client_id.starts_with("http://")
    }

    /// The metadata of the client `client_id` names; `invalid_client` if the
    /// document cannot be had or is not acceptable.
    pub async fn resolve(&self, client_id: &str) -> Result<ClientMetadata> {
        let refuse = |why: &str| Error::invalid_client(format!("client metadata document {client_id}: {why}"));
        if let Some(outcome) = self.cached(client_id) {
            return outcome.map_err(|why| refuse(&why));
        }
        let (outcome, ttl) = match self.fetch_and_check(client_id).await {
            Ok((metadata, max_age)) => {
                let ttl = max_age.map_or(self.ttl, |age| self.ttl.min(Duration::from_secs(age)));
                (Ok(metadata), ttl)
            }
            Err(why) => {
                tracing::info!(client_id, reason = why.as_str(), "client metadata document refused");
                (Err(why), FAILURE_TTL)
            }
        };
        self.remember(client_id, &outcome, ttl);
        outcome.map_err(|why| refuse(&why))
    }

    async fn fetch_and_check(&self, client_id: &str) -> std::result::Result<(ClientMetadata, Option<u64>), String> {
        let url = self.document_url(client_id)?;
        let fetched = self.fetcher.fetch(&url).await.map_err(|e| e.0)?;
        let metadata = check_document(client_id, &fetched.body)?;
        Ok((metadata, fetched.max_age))
    }

    /// The URL rules of the draft: https, a path, no fragment, no user info,
    /// written in normal form so that "equal to the URL" has one meaning.
    fn document_url(&self, client_id: &str) -> std::result::Result<Url, String> {
        if client_id.len() > MAX_URL {
            return Err("the URL is too long".into());
        }
        let url = Url::parse(client_id).map_err(|_| "it is not a URL".to_owned())?;
        if url.as_str() != client_id {
            return Err(format!("the URL must be written in normal form ({})", url.as_str()));
        }
        let loopback_http = self.allow_loopback
            && url.scheme() == "http"
            && match url.host() {
                Some(Host::Domain(d)) => d == "localhost",
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            };
        if url.scheme() != "https" && !loopback_http {
            return Err("the URL must use https".into());
        }
        if url.path() == "/" {
            return Err("the URL must have a path".into());
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err("the URL must not carry a fragment or user information".into());
        }
        Ok(url)
    }

    fn cached(&self, client_id: &str) -> Option<std::result::Result<ClientMetadata, String>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(client_id).filter(|e| e.until > Instant::now()).map(|e| e.outcome.clone())
    }

    fn remember(&self, client_id: &str, outcome: &std::result::Result<ClientMetadata, String>, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_ENTRIES {
            cache.retain(|_, e| e.until > now);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(client_id.to_owned(), Entry { outcome: outcome.clone(), until: now + ttl });
    }
}

/// Parses and checks a fetched document for `client_id`.
fn check_document(client_id: &str, body: &[u8]) -> std::result::Result<ClientMetadata, String> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| "it is not JSON".to_owned())?;
    let Some(object) = value.as_object() else {
        return Err("it is not a JSON object".into());
    };
    match object.get("client_id").and_then(|v| v.as_str()) {
        Some(id) if id == client_id => {}
        Some(_) => return Err("its client_id is not its own URL".into()),
        None => return Err("it has no client_id".into()),
    }
    if object.contains_key("client_secret") || object.contains_key("client_secret_expires_at") {
        return Err("it carries a client secret, which a metadata document must not".into());
    }
    let request: RegistrationRequest =
        serde_json::from_value(value).map_err(|e| format!("it is not client metadata: {e}"))?;
    metadata::validate(request, Registrar::MetadataDocument).map_err(|e| e.description)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const URL: &str = "https://app.example.com/oauth/client.json";

    fn document(value: serde_json::Value) -> std::result::Result<ClientMetadata, String> {
        check_document(URL, value.to_string().as_bytes())
    }

    #[test]
    fn accepts_a_document_that_names_itself() {
        let m = document(json!({
            "client_id": URL,
            "client_name": "Example",
            "redirect_uris": ["http://127.0.0.1:3000/callback"],
            "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none",
        }))
        .unwrap();
        assert!(m.is_public());
        assert_eq!(m.client_name.as_deref(), Some("Example"));
    }

    #[test]
    fn refuses_documents_about_someone_else_or_with_secrets() {
        let base = |extra: serde_json::Value| {
            let mut v = json!({"client_id": URL, "redirect_uris": ["https://app.example.com/cb"]});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        assert!(document(base(json!({"client_id": "https://evil.example/c.json"}))).is_err());
        assert!(document(base(json!({"client_secret": "x"}))).is_err());
        assert!(document(base(json!({"token_endpoint_auth_method": "private_key_jwt"}))).is_err());
        assert!(document(base(json!({"redirect_uris": ["javascript:alert(1)"]}))).is_err());
        assert!(check_document(URL, b"not json").is_err());
        assert!(check_document(URL, b"[1]").is_err());
    }

    #[test]
    fn document_urls_follow_the_draft() {
        let config = |loopback| OAuthConfig {
            cimd_allow_loopback: loopback,
            ..crate::Config::from_lookup(|_| None).unwrap().oauth
        };
        let strict = Resolver::new(&config(false)).unwrap();
        let tests = Resolver::new(&config(true)).unwrap();
        assert!(strict.document_url(URL).is_ok());
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://APP.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://user@app.example.com/client.json",
            "https://app.example.com/client.json#x",
            "http://127.0.0.1:1/client.json",
        ] {
            assert!(strict.document_url(bad).is_err(), "{bad}");
        }
        assert!(tests.document_url("http://127.0.0.1:1/client.json").is_ok());
        assert!(tests.document_url("http://example.com/client.json").is_err());
    }
}
