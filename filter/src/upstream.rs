//! What the upstream receives (SPEC F6): the request's headers without the
//! credential and without any identity header the client sent, with the
//! verified identity in their place and the API key out of the path.

use sekisho_contract::identity;

use crate::decision::Grant;
use crate::header_map::{self, HeaderMap};

/// Headers that carry a credential, which never leaves the gateway.
const CREDENTIALS: [&[u8]; 2] = [b"authorization", b"x-api-key"];

fn forwarded(name: &[u8]) -> bool {
    !CREDENTIALS.contains(&name) && !name.starts_with(identity::PREFIX.as_bytes())
}

/// Writes the upstream's header map for `request` under `grant` into `out`,
/// in the proxy-wasm layout, so the shell can hand it to Envoy in one call.
pub fn rewrite(request: &HeaderMap<'_>, grant: &Grant, out: &mut Vec<u8>) {
    let path = grant.rewritten_path.as_deref().map(str::as_bytes);
    let kept = request.iter().filter(|(name, _)| forwarded(name)).map(move |(name, value)| match path {
        Some(path) if name == b":path" => (name, path),
        _ => (name, value),
    });
    let added = grant.identity_headers().map(|(name, value)| (name.as_bytes(), value.as_bytes()));
    header_map::write(out, kept.chain(added));
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use sekisho_contract::identity::AuthKind;
    use sekisho_contract::scope::ScopeSet;

    use super::*;
    use crate::decision::Identity;

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

    fn upstream(request: &[(&str, &str)], grant: &Grant) -> Vec<(String, String)> {
        let raw = map(request);
        let mut out = Vec::new();
        rewrite(&HeaderMap::parse(&raw).unwrap(), grant, &mut out);
        let map = HeaderMap::parse(&out).expect("the rewritten map is well formed");
        map.iter()
            .map(|(n, v)| (String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap()))
            .collect()
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
}
