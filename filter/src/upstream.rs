//! What the upstream receives (SPEC F6): the request's headers without the
//! credential and without any identity header the client sent, with the
//! verified identity in their place and the API key out of the path.
//!
//! The change is made as a few edits rather than by writing the whole map
//! back: Envoy carries out a whole-map write by removing every header and
//! adding each again, which takes more of Envoy's instructions than the edits
//! a request needs (one removal and the identity headers), counted with
//! callgrind; timed on our noisy hosts the difference is not resolved
//! (docs/benchmarks.md).

use sekisho_contract::identity;

use crate::decision::Grant;
use crate::header_map::HeaderMap;

/// Headers that carry a credential, which never leaves the gateway.
const CREDENTIALS: [&[u8]; 2] = [b"authorization", b"x-api-key"];

fn forwarded(name: &[u8]) -> bool {
    !CREDENTIALS.contains(&name) && !name.starts_with(identity::PREFIX.as_bytes())
}

/// One change to the request headers, as the proxy-wasm ABI makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit<'a> {
    /// Removes every value of the header.
    Remove(&'a [u8]),
    /// Sets the header to this one value.
    Replace(&'a [u8], &'a [u8]),
    /// Adds a value.
    Add(&'a [u8], &'a [u8]),
}

/// The edits that turn `request` into the upstream's headers under `grant`:
/// each header that must not be forwarded removed once (a removal takes
/// every value of a name), `:path` replaced when the API key was in it, then
/// the identity added.
pub fn edits<'a>(request: &HeaderMap<'a>, grant: &'a Grant) -> Vec<Edit<'a>> {
    let mut out = Vec::with_capacity(8);
    for (name, _) in request.iter() {
        if !forwarded(name) && !out.contains(&Edit::Remove(name)) {
            out.push(Edit::Remove(name));
        }
    }
    if let Some(path) = &grant.rewritten_path {
        out.push(Edit::Replace(b":path", path.as_bytes()));
    }
    out.extend(grant.identity_headers().map(|(name, value)| Edit::Add(name.as_bytes(), value.as_bytes())));
    out
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use sekisho_contract::identity::AuthKind;
    use sekisho_contract::scope::ScopeSet;

    use super::*;
    use crate::decision::Identity;
    use crate::header_map;

    fn map(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut raw = Vec::new();
        header_map::write(&mut raw, pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        raw
    }

    fn grant(kind: AuthKind, subject: Option<&str>, client_id: Option<&str>, path: Option<&str>) -> Grant {
        let scopes = ScopeSet::parse("mcp:read mcp:write").unwrap();
        Grant {
            instance: Rc::from("demo"),
            identity: Identity::new(kind, subject.map(str::to_owned), client_id.map(str::to_owned), scopes),
            rewritten_path: path.map(str::to_owned),
        }
    }

    /// The upstream's headers: the edits applied the way Envoy applies them
    /// (a removal takes every value of the name, a replacement sets the first
    /// value and drops the rest, an addition appends).
    fn upstream(request: &[(&str, &str)], grant: &Grant) -> Vec<(String, String)> {
        let raw = map(request);
        let parsed = HeaderMap::parse(&raw).unwrap();
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let mut headers: Vec<(String, String)> = parsed.iter().map(|(n, v)| (text(n), text(v))).collect();
        for edit in edits(&parsed, grant) {
            match edit {
                Edit::Remove(name) => headers.retain(|(n, _)| n.as_bytes() != name),
                Edit::Replace(name, value) => match headers.iter().position(|(n, _)| n.as_bytes() == name) {
                    Some(first) => {
                        headers[first].1 = text(value);
                        let mut i = 0;
                        headers.retain(|(n, _)| {
                            i += 1;
                            i - 1 == first || n.as_bytes() != name
                        });
                    }
                    None => headers.push((text(name), text(value))),
                },
                Edit::Add(name, value) => headers.push((text(name), text(value))),
            }
        }
        headers
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_token_goes_and_the_verified_identity_comes() {
        let request = [
            (":method", "POST"),
            (":path", "/mcp/demo"),
            ("authorization", "Bearer eyJ.secret.sig"),
            ("content-type", "application/json"),
        ];
        let got = upstream(&request, &grant(AuthKind::Jwt, Some("alice"), Some("client-1"), None));
        assert_eq!(
            got,
            pairs(&[
                (":method", "POST"),
                (":path", "/mcp/demo"),
                ("content-type", "application/json"),
                ("x-sekisho-auth", "jwt"),
                ("x-sekisho-instance", "demo"),
                ("x-sekisho-scopes", "mcp:read mcp:write"),
                ("x-sekisho-subject", "alice"),
                ("x-sekisho-client-id", "client-1"),
            ])
        );
    }

    #[test]
    fn identity_headers_a_client_sent_are_dropped_even_unknown_ones() {
        let request = [
            (":path", "/mcp/demo"),
            ("x-sekisho-subject", "admin"),
            ("x-sekisho-scopes", "mcp:admin"),
            ("x-sekisho-future-header", "x"),
            ("x-sekishoo", "kept: not the prefix"),
            ("x-api-key", "sk_secret"),
        ];
        let got = upstream(&request, &grant(AuthKind::ApiKey, Some("ak_1"), None, None));
        assert_eq!(
            got,
            pairs(&[
                (":path", "/mcp/demo"),
                ("x-sekishoo", "kept: not the prefix"),
                ("x-sekisho-auth", "api_key"),
                ("x-sekisho-instance", "demo"),
                ("x-sekisho-scopes", "mcp:read mcp:write"),
                ("x-sekisho-subject", "ak_1"),
            ])
        );
    }

    #[test]
    fn a_key_in_the_query_leaves_the_path() {
        let request = [(":path", "/mcp/demo?api-key=sk_secret&a=1"), ("accept", "*/*")];
        let got = upstream(&request, &grant(AuthKind::ApiKey, Some("ak_1"), None, Some("/mcp/demo?a=1")));
        assert_eq!(&got[..2], &pairs(&[(":path", "/mcp/demo?a=1"), ("accept", "*/*")])[..]);
        assert!(got.iter().all(|(_, v)| !v.contains("sk_secret")));
    }

    #[test]
    fn an_anonymous_request_says_so() {
        let got = upstream(&[(":path", "/mcp/open")], &grant(AuthKind::Anonymous, None, None, None));
        assert_eq!(got[1], ("x-sekisho-auth".to_owned(), "none".to_owned()));
        assert!(!got.iter().any(|(n, _)| n == "x-sekisho-subject" || n == "x-sekisho-client-id"));
    }

    #[test]
    fn a_credential_sent_twice_is_removed_with_one_edit_and_nothing_else_is_touched() {
        let request = [
            (":method", "POST"),
            (":path", "/mcp/demo"),
            ("authorization", "Bearer one"),
            ("accept", "application/json"),
            ("authorization", "Bearer two"),
        ];
        let raw = map(&request);
        let g = grant(AuthKind::Jwt, Some("alice"), Some("client-1"), None);
        let got = edits(&HeaderMap::parse(&raw).unwrap(), &g);
        assert_eq!(got.iter().filter(|e| matches!(e, Edit::Remove(_))).count(), 1, "{got:?}");
        assert_eq!(got[0], Edit::Remove(b"authorization"));
        assert_eq!(got.len(), 1 + 5, "one removal and the five identity headers: {got:?}");
        let upstream = upstream(&request, &g);
        assert!(upstream.iter().all(|(n, v)| n != "authorization" && !v.contains("Bearer")), "{upstream:?}");
        assert_eq!(
            &upstream[..3],
            &pairs(&[(":method", "POST"), (":path", "/mcp/demo"), ("accept", "application/json")])[..]
        );
    }
}
