//! The per-instance policy that the service publishes and the filter enforces:
//! which credentials an instance takes and which scope each MCP operation needs.
//!
//! MCP sends every operation as a POST, so scopes follow the JSON-RPC `method`
//! (and, for `tools/call`, the tool name), not the HTTP verb.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scope::{self, ScopeSet};

/// The document at [`crate::paths::FILTER_POLICY`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterPolicy {
    /// `PUBLIC_BASE_URL`: the issuer, and the base of every resource URI.
    pub issuer: String,
    pub instances: Vec<InstancePolicy>,
    /// Access tokens revoked before their `exp` (RFC 7009 revocation, a
    /// replayed authorization code, a reused refresh token). Entries whose
    /// `exp` has passed are left out by the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revoked: Vec<RevokedToken>,
}

/// One revoked access token, by `jti`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedToken {
    pub jti: String,
    pub exp: i64,
}

impl FilterPolicy {
    pub fn instance(&self, id: &str) -> Option<&InstancePolicy> {
        self.instances.iter().find(|i| i.id == id)
    }
}

/// Which credentials an instance accepts (SPEC F7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    #[default]
    Oauth,
    ApiKey,
    Both,
    None,
}

impl AuthMode {
    pub fn accepts_jwt(self) -> bool {
        matches!(self, AuthMode::Oauth | AuthMode::Both)
    }

    pub fn accepts_api_key(self) -> bool {
        matches!(self, AuthMode::ApiKey | AuthMode::Both)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Oauth => "oauth",
            AuthMode::ApiKey => "api_key",
            AuthMode::Both => "both",
            AuthMode::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMode> {
        [AuthMode::Oauth, AuthMode::ApiKey, AuthMode::Both, AuthMode::None].into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstancePolicy {
    pub id: String,
    #[serde(default)]
    pub auth_mode: AuthMode,
    /// Overrides of the default scope of a JSON-RPC method.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub method_scopes: BTreeMap<String, String>,
    /// The scope a `tools/call` of a given tool needs, overriding the method's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tool_scopes: BTreeMap<String, String>,
}

/// One MCP operation as the filter sees it in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation<'a> {
    /// A JSON-RPC request or notification.
    Call { method: &'a str, tool: Option<&'a str> },
    /// A JSON-RPC response from the client (to a sampling or elicitation request).
    Response,
    /// `GET`: the server-to-client event stream.
    Listen,
    /// `DELETE`: the client ends its session.
    EndSession,
}

/// The scope a method needs when the instance does not say otherwise.
pub fn default_method_scope(method: &str) -> &'static str {
    let reads = matches!(
        method,
        "initialize"
            // The 2026-07-28 handshake: a client learns what the server offers.
            | "server/discover"
            | "ping"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "prompts/get"
            | "completion/complete"
            | "tasks/get"
            | "tasks/result"
    );
    if reads || method.ends_with("/list") || method.starts_with("notifications/") {
        scope::READ
    } else {
        // tools/call, logging/setLevel, tasks/cancel and anything we do not know:
        // assume it changes state.
        scope::WRITE
    }
}

impl InstancePolicy {
    pub fn required_scope<'s>(&'s self, op: &Operation<'_>) -> &'s str {
        match *op {
            Operation::Call { method, tool } => {
                if method == "tools/call"
                    && let Some(scope) = tool.and_then(|t| self.tool_scopes.get(t))
                {
                    return scope;
                }
                self.method_scopes.get(method).map_or_else(|| default_method_scope(method), String::as_str)
            }
            Operation::Response | Operation::Listen | Operation::EndSession => scope::READ,
        }
    }

    /// Every scope some operation on this instance can need. A credential that
    /// holds all of them needs no look at the request body.
    pub fn every_required_scope(&self) -> impl Iterator<Item = &str> {
        [scope::READ, scope::WRITE]
            .into_iter()
            .chain(self.method_scopes.values().map(String::as_str))
            .chain(self.tool_scopes.values().map(String::as_str))
    }

    pub fn allows_every_operation(&self, granted: &ScopeSet) -> bool {
        granted.grants_all(self.every_required_scope())
    }

    /// For `scopes_supported` in protected-resource metadata: the MCP scopes and
    /// any custom ones this instance's policy names (never `offline_access`).
    pub fn scopes_supported(&self) -> Vec<String> {
        let mut all: Vec<String> = scope::MCP_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        for s in self.method_scopes.values().chain(self.tool_scopes.values()) {
            if !all.contains(s) && s != scope::OFFLINE_ACCESS {
                all.push(s.clone());
            }
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(method: &'a str, tool: Option<&'a str>) -> Operation<'a> {
        Operation::Call { method, tool }
    }

    #[test]
    fn default_policy_reads_and_writes() {
        let p = InstancePolicy::default();
        for m in [
            "initialize",
            "server/discover",
            "ping",
            "tools/list",
            "resources/templates/list",
            "resources/read",
            "prompts/get",
            "notifications/initialized",
            "completion/complete",
        ] {
            assert_eq!(p.required_scope(&call(m, None)), scope::READ, "{m}");
        }
        for m in ["tools/call", "logging/setLevel", "tasks/cancel", "something/new"] {
            assert_eq!(p.required_scope(&call(m, None)), scope::WRITE, "{m}");
        }
        assert_eq!(p.required_scope(&Operation::Response), scope::READ);
        assert_eq!(p.required_scope(&Operation::Listen), scope::READ);
    }

    #[test]
    fn tool_scopes_override_the_method_scope() {
        let mut p = InstancePolicy::default();
        p.tool_scopes.insert("deploy".into(), "mcp:admin".into());
        p.tool_scopes.insert("whoami".into(), "mcp:read".into());
        assert_eq!(p.required_scope(&call("tools/call", Some("deploy"))), "mcp:admin");
        assert_eq!(p.required_scope(&call("tools/call", Some("whoami"))), "mcp:read");
        assert_eq!(p.required_scope(&call("tools/call", Some("echo"))), "mcp:write");
        // A tool name only matters for tools/call.
        assert_eq!(p.required_scope(&call("tools/list", Some("deploy"))), "mcp:read");
    }

    #[test]
    fn body_can_be_skipped_only_when_every_operation_is_allowed() {
        let mut p = InstancePolicy::default();
        let write = ScopeSet::parse("mcp:write").unwrap();
        let read = ScopeSet::parse("mcp:read").unwrap();
        assert!(p.allows_every_operation(&write));
        assert!(!p.allows_every_operation(&read));
        p.tool_scopes.insert("deploy".into(), "ops:deploy".into());
        assert!(!p.allows_every_operation(&write));
        assert!(p.allows_every_operation(&ScopeSet::parse("mcp:admin").unwrap()));
        assert_eq!(p.scopes_supported(), vec!["mcp:read", "mcp:write", "mcp:admin", "ops:deploy"]);
    }

    #[test]
    fn auth_modes_parse_and_decide_credentials() {
        let p: InstancePolicy = serde_json::from_str(r#"{"id":"x","auth_mode":"api_key"}"#).unwrap();
        assert!(p.auth_mode.accepts_api_key() && !p.auth_mode.accepts_jwt());
        assert_eq!(AuthMode::parse("both"), Some(AuthMode::Both));
        assert_eq!(AuthMode::parse("BOTH"), None);
    }
}
