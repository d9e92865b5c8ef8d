//! OAuth scopes of MCP operations and the order in which they imply one another.
//!
//! `mcp:admin` implies every scope, `mcp:write` implies `mcp:read`; any other
//! scope (a per-tool scope an operator configured) is implied only by itself and
//! by `mcp:admin`.

use std::fmt;

pub const READ: &str = "mcp:read";
pub const WRITE: &str = "mcp:write";
pub const ADMIN: &str = "mcp:admin";
/// Asks for a refresh token; never a resource scope (MCP 2026-07-28).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The scopes every MCP instance understands, narrowest first.
pub const MCP_SCOPES: [&str; 3] = [READ, WRITE, ADMIN];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope contains a character RFC 6749 section 3.3 does not allow")]
    InvalidCharacter,
    #[error("scope string is too long")]
    TooLong,
}

/// Longest scope string we accept; real ones are a few dozen bytes.
pub const MAX_SCOPE_STRING: usize = 1024;

/// A set of scopes as carried in a `scope` parameter or claim (RFC 6749 §3.3):
/// space-separated, order irrelevant, duplicates ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.len() > MAX_SCOPE_STRING {
            return Err(ScopeError::TooLong);
        }
        let mut scopes = Vec::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(is_scope_char) {
                return Err(ScopeError::InvalidCharacter);
            }
            scopes.push(token.to_owned());
        }
        Ok(Self::from_vec(scopes))
    }

    fn from_vec(mut scopes: Vec<String>) -> Self {
        scopes.sort();
        scopes.dedup();
        Self(scopes)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(scope)).is_ok()
    }

    /// Whether holding these scopes allows what `required` needs, counting implication.
    pub fn grants(&self, required: &str) -> bool {
        self.contains(required) || self.contains(ADMIN) || (required == READ && self.contains(WRITE))
    }

    /// Whether every scope of `required` is granted.
    pub fn grants_all<'a>(&self, required: impl IntoIterator<Item = &'a str>) -> bool {
        required.into_iter().all(|r| self.grants(r))
    }

    /// Whether `self` asks for nothing beyond `allowed` (for narrowing on refresh
    /// and for checking a request against what a client may have). No implication
    /// here: a request is narrowed scope by scope.
    pub fn is_subset_of(&self, allowed: &ScopeSet) -> bool {
        self.iter().all(|s| allowed.contains(s))
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        Self(self.iter().filter(|s| other.contains(s)).map(str::to_owned).collect())
    }

    pub fn without(&self, scope: &str) -> ScopeSet {
        Self(self.iter().filter(|s| *s != scope).map(str::to_owned).collect())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b)
}

impl<S: Into<String>> FromIterator<S> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().map(Into::into).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broader_scopes_imply_narrower_ones() {
        let admin = ScopeSet::parse(ADMIN).unwrap();
        let write = ScopeSet::parse(WRITE).unwrap();
        let read = ScopeSet::parse(READ).unwrap();
        assert!(admin.grants(READ) && admin.grants(WRITE) && admin.grants("tool:deploy"));
        assert!(write.grants(READ) && write.grants(WRITE));
        assert!(!write.grants(ADMIN) && !write.grants("tool:deploy"));
        assert!(read.grants(READ) && !read.grants(WRITE));
    }

    #[test]
    fn parsing_ignores_order_duplicates_and_extra_spaces() {
        let a = ScopeSet::parse("mcp:write  mcp:read mcp:read").unwrap();
        let b = ScopeSet::parse("mcp:read mcp:write").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "mcp:read mcp:write");
    }

    #[test]
    fn refuses_characters_outside_rfc6749() {
        assert_eq!(ScopeSet::parse("mcp:read \"x\""), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("a\\b"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("caf\u{e9}"), Err(ScopeError::InvalidCharacter));
        assert_eq!(ScopeSet::parse("a\tb"), Err(ScopeError::InvalidCharacter));
    }

    #[test]
    fn subset_does_not_use_implication() {
        let granted = ScopeSet::parse("mcp:admin").unwrap();
        let asked = ScopeSet::parse("mcp:read").unwrap();
        assert!(!asked.is_subset_of(&granted));
        assert!(asked.is_subset_of(&ScopeSet::parse("mcp:read mcp:write").unwrap()));
    }
}
