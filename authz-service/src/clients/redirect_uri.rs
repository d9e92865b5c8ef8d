//! Which redirect URIs a client may register, and whether the one in an
//! authorization request is one of them (SPEC A3, RFC 8252, OAuth 2.1 §4.1.1).
//!
//! Allowed: `https` with any host; `http` only on a loopback host (`localhost`,
//! `127.0.0.1`, `[::1]`, any port); a private-use scheme of a native app, which
//! must look like reverse DNS (`com.example.app:/callback`). Never a fragment,
//! a wildcard, user info, or a scheme a browser would execute or read locally.
//!
//! Matching is exact string comparison, with the one exception OAuth 2.1 and
//! RFC 8252 §7.3 require: for `http` on a loopback host the port may differ,
//! since native apps listen on whatever port the OS gives them.
//!
//! Not here: which URIs a given client registered (that is its metadata).

use url::{Host, Url};

/// Longest redirect URI we store; real ones are well under this.
pub const MAX_REDIRECT_URI: usize = 2000;

/// Schemes that are never a redirect target, even though they contain no dot
/// and would be refused anyway: listed so the error says why.
const FORBIDDEN_SCHEMES: [&str; 10] =
    ["javascript", "data", "file", "vbscript", "about", "blob", "filesystem", "ftp", "ws", "wss"];

/// Checks a redirect URI a client wants to register; the error says what is wrong.
pub fn validate(uri: &str) -> Result<(), String> {
    if uri.is_empty() || uri.len() > MAX_REDIRECT_URI {
        return Err(format!("a redirect URI must be 1 to {MAX_REDIRECT_URI} characters"));
    }
    if uri.contains('#') {
        return Err("a redirect URI must not contain a fragment".into());
    }
    if uri.contains('*') {
        return Err("a redirect URI must not contain a wildcard".into());
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("a redirect URI must not contain spaces or control characters".into());
    }
    let url = Url::parse(uri).map_err(|_| "a redirect URI must be an absolute URI".to_owned())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a redirect URI must not contain user information".into());
    }
    match url.scheme() {
        "https" => {
            if url.host().is_none() {
                return Err("an https redirect URI needs a host".into());
            }
            Ok(())
        }
        "http" => {
            if is_loopback_host(&url) {
                Ok(())
            } else {
                Err("http redirect URIs are allowed only on localhost, 127.0.0.1 or [::1]; use https".into())
            }
        }
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => Err(format!("`{scheme}:` is not allowed in a redirect URI")),
        scheme => {
            if is_private_use_scheme(scheme) {
                Ok(())
            } else {
                Err(format!(
                    "`{scheme}:` is not a private-use scheme; native apps use a reverse domain name such as com.example.app"
                ))
            }
        }
    }
}

/// Whether `requested` (from an authorization request) matches `registered`.
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    // The loopback exception: same everything but the port.
    match (Url::parse(registered), Url::parse(requested)) {
        (Ok(mut a), Ok(mut b))
            if a.scheme() == "http" && b.scheme() == "http" && is_loopback_host(&a) && is_loopback_host(&b) =>
        {
            // Cannot fail for http URLs with a host.
            let _ = a.set_port(None);
            let _ = b.set_port(None);
            a == b
        }
        _ => false,
    }
}

/// The host to show the user on the consent page (the scheme for private-use schemes).
pub fn display_host(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(url) => match url.host_str() {
            Some(host) => match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            None => format!("{}:", url.scheme()),
        },
        Err(_) => uri.to_owned(),
    }
}

/// Whether the URI leads back to the user's own machine: such a client's
/// identity cannot be verified, which the consent page says.
pub fn is_loopback(uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|url| is_loopback_host(&url))
}

/// The scheme, host and port a browser navigates to, as a CSP source expression.
pub fn csp_source(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => {
            let origin = url.origin();
            origin.is_tuple().then(|| origin.ascii_serialization())
        }
        scheme => Some(format!("{scheme}:")),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

/// Reverse-DNS looking: at least two dot-separated labels, each non-empty.
fn is_private_use_scheme(scheme: &str) -> bool {
    scheme.contains('.')
        && scheme.split('.').all(|label| {
            !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'+')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_https_loopback_http_and_private_use_schemes() {
        for ok in [
            "https://app.example.com/callback",
            "https://app.example.com/cb?x=1",
            "http://localhost:3000/callback",
            "http://127.0.0.1:49152/callback",
            "http://[::1]/callback",
            "http://localhost/",
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_dangerous_and_sloppy_redirect_uris() {
        for bad in [
            "",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "http://example.com/callback",
            "http://127.0.0.2/callback",
            "http://localhost.evil.com/cb",
            "https://app.example.com/callback#frag",
            "https://app.example.com/callback#",
            "https://*.example.com/callback",
            "https://user:pass@app.example.com/cb",
            "myapp:/callback",
            "/relative/callback",
            "https://app.example.com/call back",
            "com..example:/cb",
        ] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate(&format!("https://a.example/{}", "x".repeat(2000))).is_err());
    }

    #[test]
    fn matching_is_exact_except_for_loopback_ports() {
        let registered = "https://app.example.com/callback";
        assert!(matches(registered, registered));
        assert!(!matches(registered, "https://app.example.com/callback/"));
        assert!(!matches(registered, "https://APP.example.com/callback"));
        assert!(!matches(registered, "https://app.example.com/callback?x=1"));
        assert!(!matches(registered, "https://app.example.com:8443/callback"));
        let loopback = "http://127.0.0.1:3000/callback";
        assert!(matches(loopback, "http://127.0.0.1:49152/callback"));
        assert!(matches(loopback, "http://127.0.0.1/callback"));
        assert!(!matches(loopback, "http://127.0.0.1:3000/other"));
        assert!(!matches(loopback, "http://localhost:3000/callback"));
        assert!(!matches(loopback, "https://127.0.0.1:3000/callback"));
    }

    #[test]
    fn display_and_csp() {
        assert_eq!(display_host("http://127.0.0.1:3000/cb"), "127.0.0.1:3000");
        assert_eq!(display_host("https://app.example.com/cb"), "app.example.com");
        assert_eq!(display_host("com.example.app:/cb"), "com.example.app:");
        assert_eq!(csp_source("http://127.0.0.1:3000/cb").as_deref(), Some("http://127.0.0.1:3000"));
        assert_eq!(csp_source("com.example.app:/cb").as_deref(), Some("com.example.app:"));
        assert!(is_loopback("http://localhost:1/x") && !is_loopback("https://a.example/x"));
    }
}
