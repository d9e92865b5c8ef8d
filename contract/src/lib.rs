//! What the Sekisho filter and the authorization service must agree on, defined once.
//!
//! This crate builds for `wasm32-wasip1` (the Envoy filter) and for the host (the
//! service, the CLI, the tests). It holds formats and rules, not I/O: scopes and
//! their implication order, resource-URI canonicalisation, the access-token
//! format (RFC 9068 `at+jwt`, ES256), the JWK format, the per-instance policy the
//! filter enforces, the API key format, the identity headers handed upstream and the RFC 6750 /
//! RFC 9728 `WWW-Authenticate` challenge.

pub mod api_key;
pub mod challenge;
pub mod claims;
pub mod identity;
pub mod jwk;
pub mod jws;
pub mod policy;
pub mod resource;
pub mod scope;

/// Paths on the authorization service that the filter calls through its Envoy cluster.
pub mod paths {
    /// The JWKS document (RFC 7517) with every key a valid token may be signed with.
    pub const JWKS: &str = "/oauth/jwks";
    /// The per-instance policy document (`policy::FilterPolicy`). Internal: Envoy's
    /// public listener does not route it.
    pub const FILTER_POLICY: &str = "/internal/v1/filter-policy";
    /// Where the filter asks whether an API key is valid (`api_key::VerifyRequest`
    /// → `api_key::VerifyResponse`). Internal, like [`FILTER_POLICY`].
    pub const API_KEY_VERIFY: &str = "/internal/v1/api-keys/verify";
    /// Prefix of RFC 9728 protected-resource metadata.
    pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";
    /// RFC 8414 authorization-server metadata.
    pub const AUTHORIZATION_SERVER_METADATA: &str = "/.well-known/oauth-authorization-server";
}
