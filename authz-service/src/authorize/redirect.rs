//! The redirect back to the client: `code` (or `error`), `state` when the
//! request had one, and `iss` (RFC 9207) always, so a client talking to several
//! authorization servers can tell which one answered (mix-up defence).

use url::Url;

use crate::error::Error;

/// The redirect URI with `params` added to its query (RFC 6749 §3.1.2: an
/// existing query is kept).
fn with_query(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.into()
        }
        // Validated at registration, so not reachable; never redirect to garbage.
        Err(_) => String::new(),
    }
}

pub fn success(redirect_uri: &str, code: &str, state: Option<&str>, issuer: &str) -> String {
    let mut params = vec![("code", code)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    with_query(redirect_uri, &params)
}

pub fn error(redirect_uri: &str, error: &Error, state: Option<&str>, issuer: &str) -> String {
    let mut params = vec![("error", error.code())];
    if let Some(description) = error.description() {
        params.push(("error_description", description));
    }
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    with_query(redirect_uri, &params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_query_and_adds_state_and_iss() {
        assert_eq!(
            success("http://127.0.0.1:3000/cb?x=1", "c0de", Some("s t"), "http://h:1"),
            "http://127.0.0.1:3000/cb?x=1&code=c0de&state=s+t&iss=http%3A%2F%2Fh%3A1"
        );
        assert_eq!(
            success("com.example.app:/cb", "c", None, "https://as.example"),
            "com.example.app:/cb?code=c&iss=https%3A%2F%2Fas.example"
        );
        let denied = error(
            "https://a.example/cb",
            &Error::refused(crate::error::ErrorCode::AccessDenied, "no"),
            None,
            "https://as.example",
        );
        assert_eq!(
            denied,
            "https://a.example/cb?error=access_denied&error_description=no&iss=https%3A%2F%2Fas.example"
        );
    }
}
