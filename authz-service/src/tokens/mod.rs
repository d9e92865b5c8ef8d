//! Tokens the service issues. Access tokens are made in exactly one place,
//! [`access::issue_access_token`]; the admin mint ([`mint`]) and, later, the
//! token endpoint's grants only decide *what* to issue.

pub mod access;
pub mod mint;
