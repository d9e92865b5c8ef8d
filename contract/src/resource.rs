//! Resource URIs of MCP instances and the rule that canonicalises them.
//!
//! The canonical resource URI of instance `id` is `{base}/mcp/{id}`: no trailing
//! slash, no query, no fragment. Some clients append a slash to whatever they
//! were given, so the service accepts exactly one trailing slash on input and
//! treats it as the same resource; everything it issues (the `aud` claim, the
//! `resource` of protected-resource metadata) is the canonical form. The scheme
//! and host of the base compare case-insensitively, as URIs do (RFC 3986 §6.2.2.1).

use crate::paths;

/// Longest instance id; ids are path segments and header values.
pub const MAX_INSTANCE_ID: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error("resource is not an absolute URI on this server")]
    NotOnThisServer,
    #[error("resource must not contain a fragment")]
    Fragment,
    #[error("resource must not contain a query")]
    Query,
    #[error("resource does not name an MCP instance")]
    NotAnInstance,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error("base URL must start with http:// or https://")]
    Scheme,
    #[error("base URL must be an origin: no path, query, fragment or trailing slash")]
    NotAnOrigin,
    #[error("base URL has no host")]
    NoHost,
}

/// Checks `PUBLIC_BASE_URL`, which is also the issuer: clients compare the issuer
/// as a string, so it must have exactly one spelling.
pub fn validate_base_url(base: &str) -> Result<(), BaseUrlError> {
    let rest = base.strip_prefix("https://").or_else(|| base.strip_prefix("http://")).ok_or(BaseUrlError::Scheme)?;
    if rest.is_empty() {
        return Err(BaseUrlError::NoHost);
    }
    if rest.contains(['/', '?', '#', ' ']) || rest.contains('@') {
        return Err(BaseUrlError::NotAnOrigin);
    }
    Ok(())
}

/// Instance ids: 1–64 of `[A-Za-z0-9_-]`, so they are safe in paths, headers and logs.
pub fn is_valid_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_INSTANCE_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `{base}/mcp/{id}`.
pub fn resource_uri(base: &str, instance: &str) -> String {
    format!("{base}/mcp/{instance}")
}

/// Where RFC 9728 puts the metadata of `{base}/mcp/{id}`: the well-known
/// segment inserted between the origin and the path.
pub fn protected_resource_metadata_url(base: &str, instance: &str) -> String {
    format!("{base}{}/mcp/{instance}", paths::PROTECTED_RESOURCE_METADATA)
}

/// The instance a request path (`:path`, query included) addresses:
/// `/mcp/{id}`, `/mcp/{id}/…`, `/mcp/{id}?…`.
pub fn instance_from_path(path: &str) -> Option<&str> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path.strip_prefix("/mcp/")?;
    let id = rest.split_once('/').map_or(rest, |(id, _)| id);
    is_valid_instance_id(id).then_some(id)
}

/// The instance a `resource` parameter (RFC 8707) names, applying the
/// canonicalisation rule in the module doc.
pub fn instance_from_resource<'a>(base: &str, resource: &'a str) -> Result<&'a str, ResourceError> {
    if resource.contains('#') {
        return Err(ResourceError::Fragment);
    }
    if resource.contains('?') {
        return Err(ResourceError::Query);
    }
    let head = resource.get(..base.len()).ok_or(ResourceError::NotOnThisServer)?;
    if !head.eq_ignore_ascii_case(base) {
        return Err(ResourceError::NotOnThisServer);
    }
    let path = &resource[base.len()..];
    if !path.starts_with('/') {
        return Err(ResourceError::NotOnThisServer);
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let id = path.strip_prefix("/mcp/").ok_or(ResourceError::NotAnInstance)?;
    if is_valid_instance_id(id) { Ok(id) } else { Err(ResourceError::NotAnInstance) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://127.0.0.1:8080";

    #[test]
    fn base_url_must_be_a_bare_origin() {
        assert!(validate_base_url("https://auth.example.com").is_ok());
        assert!(validate_base_url("http://127.0.0.1:8080").is_ok());
        assert_eq!(validate_base_url("https://auth.example.com/"), Err(BaseUrlError::NotAnOrigin));
        assert_eq!(validate_base_url("https://a.example/x"), Err(BaseUrlError::NotAnOrigin));
        assert_eq!(validate_base_url("ftp://a.example"), Err(BaseUrlError::Scheme));
        assert_eq!(validate_base_url("https://"), Err(BaseUrlError::NoHost));
    }

    #[test]
    fn instance_from_path_takes_the_first_segment() {
        assert_eq!(instance_from_path("/mcp/demo"), Some("demo"));
        assert_eq!(instance_from_path("/mcp/demo?api-key=x"), Some("demo"));
        assert_eq!(instance_from_path("/mcp/demo/"), Some("demo"));
        assert_eq!(instance_from_path("/mcp/demo/sub"), Some("demo"));
        assert_eq!(instance_from_path("/mcp/"), None);
        assert_eq!(instance_from_path("/mcp"), None);
        assert_eq!(instance_from_path("/other/demo"), None);
        assert_eq!(instance_from_path("/mcp/de%2Fmo"), None);
        assert_eq!(instance_from_path("/mcp/../admin"), None);
    }

    #[test]
    fn resource_accepts_one_trailing_slash_and_case_insensitive_origin() {
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8080/mcp/demo"), Ok("demo"));
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8080/mcp/demo/"), Ok("demo"));
        assert_eq!(instance_from_resource(BASE, "HTTP://127.0.0.1:8080/mcp/demo"), Ok("demo"));
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8080/mcp/demo//"), Err(ResourceError::NotAnInstance));
    }

    #[test]
    fn resource_refuses_other_servers_fragments_and_queries() {
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8081/mcp/demo"), Err(ResourceError::NotOnThisServer));
        assert_eq!(
            instance_from_resource(BASE, "http://127.0.0.1:80800/mcp/demo"),
            Err(ResourceError::NotOnThisServer)
        );
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8080/mcp/demo#x"), Err(ResourceError::Fragment));
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8080/mcp/demo?x"), Err(ResourceError::Query));
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8080"), Err(ResourceError::NotOnThisServer));
        assert_eq!(instance_from_resource(BASE, "http://127.0.0.1:8080/"), Err(ResourceError::NotAnInstance));
        assert_eq!(instance_from_resource(BASE, "héllo"), Err(ResourceError::NotOnThisServer));
    }

    #[test]
    fn metadata_url_inserts_the_well_known_segment() {
        assert_eq!(
            protected_resource_metadata_url(BASE, "demo"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp/demo"
        );
        assert_eq!(resource_uri(BASE, "demo"), "http://127.0.0.1:8080/mcp/demo");
    }
}
