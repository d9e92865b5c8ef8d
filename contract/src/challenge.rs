//! The `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3, RFC 9728 §5.1) and the
//! small JSON body that goes with it.
//!
//! One builder serves every refusal of an MCP request so that all of them lead a
//! client to the protected-resource metadata the same way.

use serde::Serialize;

/// RFC 6750 §3.1 error codes, each with its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
}

impl BearerError {
    pub fn code(self) -> &'static str {
        match self {
            BearerError::InvalidRequest => "invalid_request",
            BearerError::InvalidToken => "invalid_token",
            BearerError::InsufficientScope => "insufficient_scope",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            BearerError::InvalidRequest => 400,
            BearerError::InvalidToken => 401,
            BearerError::InsufficientScope => 403,
        }
    }
}

/// A refusal of an MCP request as the client will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub resource_metadata: String,
    /// `None` when no credential was sent at all (RFC 6750 §3.1: no error code then).
    pub error: Option<BearerError>,
    pub description: Option<String>,
    /// The scopes the operation needs (or the instance offers, on a bare 401).
    pub scope: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_description: Option<&'a str>,
}

impl Challenge {
    pub fn status(&self) -> u16 {
        self.error.map_or(401, BearerError::status)
    }

    /// The header value. Parameter values are RFC 7230 quoted strings; the
    /// description is reduced to the characters RFC 6750 allows there.
    pub fn header_value(&self) -> String {
        let mut out = String::from("Bearer ");
        let mut params: Vec<(&str, String)> = Vec::with_capacity(4);
        if let Some(error) = self.error {
            params.push(("error", error.code().to_owned()));
        }
        if let Some(description) = &self.description {
            params.push(("error_description", sanitize(description)));
        }
        if let Some(scope) = &self.scope {
            params.push(("scope", sanitize(scope)));
        }
        params.push(("resource_metadata", sanitize(&self.resource_metadata)));
        for (i, (name, value)) in params.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
            out.push_str("=\"");
            out.push_str(value);
            out.push('"');
        }
        out
    }

    /// `{"error": "...", "error_description": "..."}`; `invalid_token` stands in
    /// for the missing error code when no credential was sent.
    pub fn body(&self) -> String {
        let body = Body {
            error: self.error.map_or("invalid_token", BearerError::code),
            error_description: self.description.as_deref(),
        };
        serde_json::to_string(&body).unwrap_or_else(|_| String::from("{\"error\":\"invalid_token\"}"))
    }
}

/// RFC 6750 §3: `error_description` and `scope` use %x20-21 / %x23-5B / %x5D-7E.
fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp/demo";

    #[test]
    fn missing_credential_has_no_error_code() {
        let c = Challenge {
            resource_metadata: PRM.into(),
            error: None,
            description: None,
            scope: Some("mcp:read mcp:write".into()),
        };
        assert_eq!(c.status(), 401);
        assert_eq!(c.header_value(), format!("Bearer scope=\"mcp:read mcp:write\", resource_metadata=\"{PRM}\""));
    }

    #[test]
    fn insufficient_scope_is_403_with_the_needed_scope() {
        let c = Challenge {
            resource_metadata: PRM.into(),
            error: Some(BearerError::InsufficientScope),
            description: Some("tools/call needs mcp:write".into()),
            scope: Some("mcp:write".into()),
        };
        assert_eq!(c.status(), 403);
        assert_eq!(
            c.header_value(),
            format!(
                "Bearer error=\"insufficient_scope\", error_description=\"tools/call needs mcp:write\", scope=\"mcp:write\", resource_metadata=\"{PRM}\""
            )
        );
        let body: serde_json::Value = serde_json::from_str(&c.body()).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }

    #[test]
    fn quotes_and_control_characters_cannot_break_out_of_the_header() {
        let c = Challenge {
            resource_metadata: PRM.into(),
            error: Some(BearerError::InvalidToken),
            description: Some("bad \"x\"\r\nSet-Cookie: a=b \\".into()),
            scope: None,
        };
        let h = c.header_value();
        assert!(!h.contains('\r') && !h.contains('\n') && !h.contains('\\'));
        // Three parameters, two quotes each: none injected.
        assert_eq!(h.matches('"').count(), 6);
    }
}
