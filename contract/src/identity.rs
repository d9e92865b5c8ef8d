//! Headers that carry the verified identity from the filter to the MCP server.
//!
//! The filter removes every client-sent header with [`PREFIX`] before adding its
//! own, so an upstream can trust them as long as it is reachable only through Envoy.

pub const PREFIX: &str = "x-sekisho-";
pub const SUBJECT: &str = "x-sekisho-subject";
pub const CLIENT_ID: &str = "x-sekisho-client-id";
pub const SCOPES: &str = "x-sekisho-scopes";
/// `jwt` or `api_key`.
pub const AUTH: &str = "x-sekisho-auth";
pub const INSTANCE: &str = "x-sekisho-instance";

/// Whether `value` can travel as an identity header's value: no control
/// character (tab aside), so no CR or LF can end the header early and start
/// another one the upstream would trust. RFC 9110 §5.5 forbids them in field
/// values; a subject carrying one is refused, not cleaned.
pub fn is_header_safe(value: &str) -> bool {
    !value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// How a request was authenticated, as written in [`AUTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Jwt,
    ApiKey,
    /// The instance's auth mode is `none`.
    Anonymous,
}

impl AuthKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Jwt => "jwt",
            AuthKind::ApiKey => "api_key",
            AuthKind::Anonymous => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_not_header_safe() {
        assert!(is_header_safe("auth0|6543 Jöhn\tDoe https://client.example/cimd.json"));
        for bad in ["alice\r\nx-sekisho-scopes: mcp:admin", "a\nb", "nul\0", "del\u{7f}", "esc\u{1b}[0m"] {
            assert!(!is_header_safe(bad), "{bad:?}");
        }
    }
}
