//! Which MCP operations a JSON-RPC body holds: the `method` of each message and,
//! for `tools/call`, the tool name.
//!
//! Only those fields are read; tool arguments are skipped without being built.
//! Anything ambiguous is refused rather than guessed: a filter that read a
//! different tool name than the server would check the wrong scope. serde
//! refuses duplicate `method` or `name` members, and a `tools/call` without a
//! plain string name is refused.

use std::borrow::Cow;

use sekisho_contract::policy::Operation;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

/// JSON-RPC batches were dropped from MCP in 2025-06-18; older clients may still
/// send small ones. Large ones are refused.
pub const MAX_BATCH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is not JSON")]
    NotJson,
    #[error("the request body is not a JSON-RPC message")]
    NotJsonRpc,
    #[error("tools/call needs params.name as a string")]
    ToolName,
    #[error("the JSON-RPC batch is empty or too large")]
    BatchSize,
}

/// One message, owning what it needs so the body buffer can be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Call { method: String, tool: Option<String> },
    Response,
}

impl Op {
    pub fn as_operation(&self) -> Operation<'_> {
        match self {
            Op::Call { method, tool } => Operation::Call { method, tool: tool.as_deref() },
            Op::Response => Operation::Response,
        }
    }
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(default)]
    result: Option<IgnoredAny>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ToolParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// The operations in a request body.
pub fn operations(body: &[u8]) -> Result<Vec<Op>, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).ok_or(BodyError::NotJson)?;
    let messages: Vec<Message<'_>> = match first {
        b'{' => vec![serde_json::from_slice(body).map_err(classify)?],
        b'[' => serde_json::from_slice(body).map_err(classify)?,
        _ => return Err(BodyError::NotJson),
    };
    if messages.is_empty() || messages.len() > MAX_BATCH {
        return Err(BodyError::BatchSize);
    }
    messages.into_iter().map(op).collect()
}

fn classify(e: serde_json::Error) -> BodyError {
    if e.is_data() { BodyError::NotJsonRpc } else { BodyError::NotJson }
}

fn op(m: Message<'_>) -> Result<Op, BodyError> {
    match m.method {
        Some(method) => {
            let tool = if method == "tools/call" {
                let raw = m.params.ok_or(BodyError::ToolName)?.get();
                if !raw.starts_with('{') {
                    return Err(BodyError::ToolName);
                }
                let params: ToolParams<'_> = serde_json::from_str(raw).map_err(|_| BodyError::ToolName)?;
                Some(params.name.into_owned())
            } else {
                None
            };
            Ok(Op::Call { method: method.into_owned(), tool })
        }
        None if m.result.is_some() || m.error.is_some() => Ok(Op::Response),
        None => Err(BodyError::NotJsonRpc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(method: &str, tool: Option<&str>) -> Op {
        Op::Call { method: method.into(), tool: tool.map(Into::into) }
    }

    #[test]
    fn reads_method_and_tool_name() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"x":[1,{"name":"fake"}]},"name":"echo"}}"#;
        assert_eq!(operations(body), Ok(vec![call("tools/call", Some("echo"))]));
        assert_eq!(
            operations(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            Ok(vec![call("tools/list", None)])
        );
        assert_eq!(
            operations(br#" {"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(vec![call("notifications/initialized", None)])
        );
    }

    #[test]
    fn escaped_names_are_decoded_like_the_server_decodes_them() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"name":"d\u0065ploy"}}"#;
        assert_eq!(operations(body), Ok(vec![call("tools/call", Some("deploy"))]));
    }

    #[test]
    fn responses_and_batches() {
        assert_eq!(operations(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#), Ok(vec![Op::Response]));
        assert_eq!(operations(br#"{"jsonrpc":"2.0","id":1,"error":{"code":1}}"#), Ok(vec![Op::Response]));
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}]"#;
        assert_eq!(operations(batch), Ok(vec![call("ping", None), call("tools/call", Some("x"))]));
        assert_eq!(operations(b"[]"), Err(BodyError::BatchSize));
    }

    #[test]
    fn refuses_what_it_cannot_read_unambiguously() {
        assert_eq!(operations(b""), Err(BodyError::NotJson));
        assert_eq!(operations(b"not json"), Err(BodyError::NotJson));
        assert_eq!(operations(b"{\"method\":"), Err(BodyError::NotJson));
        assert_eq!(operations(br#"{"jsonrpc":"2.0","id":1}"#), Err(BodyError::NotJsonRpc));
        assert_eq!(operations(br#"{"method":5}"#), Err(BodyError::NotJsonRpc));
        assert_eq!(operations(br#"{"method":"a","method":"tools/call"}"#), Err(BodyError::NotJsonRpc));
        assert_eq!(operations(br#"{"method":"tools/call"}"#), Err(BodyError::ToolName));
        assert_eq!(operations(br#"{"method":"tools/call","params":["deploy"]}"#), Err(BodyError::ToolName));
        assert_eq!(operations(br#"{"method":"tools/call","params":{"name":1}}"#), Err(BodyError::ToolName));
        assert_eq!(
            operations(br#"{"method":"tools/call","params":{"name":"echo","name":"deploy"}}"#),
            Err(BodyError::ToolName)
        );
        assert_eq!(operations(&[b'{', 0xff, b'}']), Err(BodyError::NotJson));
    }

    #[test]
    fn deep_nesting_neither_crashes_nor_hides_the_tool() {
        let mut body = String::from(r#"{"method":"tools/call","params":{"name":"x","arguments":"#);
        body.push_str(&"[".repeat(100_000));
        body.push_str(&"]".repeat(100_000));
        body.push_str("}}");
        // Arguments are skipped, not built, so their depth costs no stack.
        assert_eq!(operations(body.as_bytes()), Ok(vec![call("tools/call", Some("x"))]));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(operations(deep.as_bytes()), Err(BodyError::NotJsonRpc));
    }
}
