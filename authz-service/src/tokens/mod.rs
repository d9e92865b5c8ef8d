//! Tokens the service issues. Access tokens are made in exactly one place,
//! [`access::issue_access_token`]; the admin mint ([`mint`]) and the token
//! endpoint's grants (`crate::grants`) only decide *what* to issue.
//!
//! - [`refresh`]: refresh-token families, rotation's writes, family revocation;
//! - [`revocation`]: the list of revoked access tokens the filter honours;
//! - [`introspection`]: RFC 7662 answers about our own tokens.

pub mod access;
pub mod introspection;
pub mod mint;
pub mod refresh;
pub mod revocation;
