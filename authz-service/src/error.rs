//! The service's one error type, and the single place where errors become HTTP
//! responses: RFC 6749 §5.2 JSON bodies, the right status codes, and the
//! `WWW-Authenticate` and `Retry-After` headers that go with them.
//!
//! A client's mistake is always a 4xx with a code it can act on; only our own
//! faults become 500, and their details go to the log, never to the client.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::crypto::field::FieldError;
use crate::crypto::random::RandomError;
use crate::rate_limit::Exceeded;

/// Seconds a client should wait after `temporarily_unavailable`.
const RETRY_AFTER_SECS: &str = "5";

/// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 8707 and RFC 6750, plus the
/// few the admin API needs for its own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    /// RFC 8707 §2: the `resource` is not one we serve.
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: the authorization endpoint serves `code` only.
    UnsupportedResponseType,
    /// RFC 7591 §3.2.2.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2.
    InvalidClientMetadata,
    /// A body over the service's limit: `invalid_request`, with 413 (RFC 9110 §15.5.14).
    PayloadTooLarge,
    NotFound,
    MethodNotAllowed,
    Conflict,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::PayloadTooLarge => "invalid_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            // RFC 6749 §5.2: 401 when the client failed to authenticate.
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A refusal the client can act on.
    #[error("{code}: {description}")]
    Refused { code: ErrorCode, description: String },
    /// A bearer-protected API (the admin API) got no valid token (RFC 6750 §3).
    #[error("unauthorized ({realm})")]
    Unauthorized { realm: &'static str, credential_sent: bool },
    /// Over a rate limit (RFC 6585 §4): 429 with `Retry-After`. The code is
    /// `too_many_requests`, as Auth0 answers: RFC 8628's `slow_down` is a 400
    /// that tells a device-flow client to poll 5 s slower, and OAuth libraries
    /// that know it would misread it anywhere else.
    #[error("too many requests ({})", .0.limit.name())]
    TooManyRequests(Exceeded),
    /// The service cannot answer now (database unreachable); the client may retry.
    #[error("temporarily unavailable: {0}")]
    Unavailable(String),
    /// Our fault. Logged in full; the client sees only `server_error`.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn refused(code: ErrorCode, description: impl Into<String>) -> Self {
        Error::Refused { code, description: description.into() }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::InvalidScope, description)
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::InvalidTarget, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::InvalidGrant, description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::UnauthorizedClient, description)
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::NotFound, description)
    }

    pub fn conflict(description: impl Into<String>) -> Self {
        Self::refused(ErrorCode::Conflict, description)
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Error::Internal(error.into())
    }

    /// The RFC error code the client sees.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused { code, .. } => code.as_str(),
            Error::Unauthorized { .. } => "invalid_token",
            Error::TooManyRequests(_) => "too_many_requests",
            Error::Unavailable(_) => "temporarily_unavailable",
            Error::Internal(_) => "server_error",
        }
    }

    /// What the client is told besides the code; never anything internal.
    pub fn description(&self) -> Option<&str> {
        match self {
            Error::Refused { description, .. } => Some(description),
            Error::Unauthorized { credential_sent: false, .. } => Some("a bearer token is required"),
            Error::Unauthorized { credential_sent: true, .. } => Some("the bearer token is not valid"),
            Error::TooManyRequests(_) => Some("too many requests; retry after the number of seconds in Retry-After"),
            Error::Unavailable(_) => Some("the service is temporarily unavailable; retry later"),
            Error::Internal(_) => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Refused { code, .. } => code.status(),
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // The database is unreachable or overloaded: the request was fine.
            ref down if crate::storage::is_unreachable(down) => Error::Unavailable(format!("database: {e}")),
            ref contended if crate::storage::is_contention(contended) => Error::Unavailable(format!("database: {e}")),
            // Only a request can bring a NUL, which PostgreSQL text cannot hold
            // (SQLSTATE 22021): the client's mistake, wherever it was not caught first.
            ref nul if nul.as_database_error().and_then(|d| d.code()).as_deref() == Some("22021") => {
                Error::invalid_request("the request holds a character that cannot be stored (a null byte)")
            }
            other => Error::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

impl From<FieldError> for Error {
    fn from(e: FieldError) -> Self {
        Error::internal(e)
    }
}

impl From<RandomError> for Error {
    fn from(e: RandomError) -> Self {
        Error::internal(e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let description = self.description();
        match &self {
            Error::Internal(e) => tracing::error!(error = format!("{e:#}"), "request failed"),
            Error::Unavailable(why) => {
                tracing::warn!(reason = why.as_str(), "request failed: unavailable")
            }
            _ => {}
        }
        let body = Body { error: self.code(), error_description: description };
        let mut response = (self.status(), axum::Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1/§5.2: token responses and their errors must not be cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Error::Unauthorized { realm, credential_sent } => {
                // RFC 6750 §3.1: no error code when no credential was sent.
                let challenge = if *credential_sent {
                    format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
                } else {
                    format!("Bearer realm=\"{realm}\"")
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Error::Refused { code: ErrorCode::InvalidClient, .. } => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"sekisho\""));
            }
            Error::TooManyRequests(exceeded) => {
                for (name, value) in exceeded.headers() {
                    headers.insert(name, value);
                }
            }
            Error::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_4xx_with_their_rfc_code() {
        assert_eq!(Error::invalid_target("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(Error::invalid_target("x").code(), "invalid_target");
        assert_eq!(Error::refused(ErrorCode::InvalidClient, "x").status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Error::not_found("x").status(), StatusCode::NOT_FOUND);
        let internal = Error::internal(anyhow::anyhow!("secret detail"));
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(internal.code(), "server_error");
    }

    #[test]
    fn unavailable_carries_retry_after_and_unauthorized_a_challenge() {
        let response = Error::Unavailable("db".into()).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let response = Error::Unauthorized { realm: "sekisho-admin", credential_sent: true }.into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"sekisho-admin\", error=\"invalid_token\""
        );
        let response = Error::Unauthorized { realm: "sekisho-admin", credential_sent: false }.into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"sekisho-admin\"");
    }
}
