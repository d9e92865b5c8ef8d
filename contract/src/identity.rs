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
