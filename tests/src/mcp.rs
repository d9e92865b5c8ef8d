//! A tiny MCP (JSON-RPC over Streamable HTTP) client for scenarios: enough to
//! initialize a session and call methods through Envoy, and to see exactly
//! what status, headers and body came back. Not a general client: the real
//! SDK clients are tested elsewhere.

use std::cell::Cell;

use anyhow::{Context, Result, bail};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::stack::Stack;

/// The protocol version the helpers announce.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// What came back, unparsed.
#[derive(Debug)]
pub struct McpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl McpResponse {
    /// The first value of header `name`, if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn www_authenticate(&self) -> Option<&str> {
        self.header("www-authenticate")
    }

    /// The JSON-RPC message: the JSON body, or the response carried in an
    /// SSE stream (`text/event-stream`).
    pub fn json(&self) -> Result<Value> {
        let is_sse = self.header("content-type").is_some_and(|t| t.starts_with("text/event-stream"));
        if !is_sse {
            return serde_json::from_str(&self.body).with_context(|| format!("body is not JSON: {}", self.body));
        }
        let messages: Vec<Value> = sse_data(&self.body).filter_map(|data| serde_json::from_str(&data).ok()).collect();
        let response = messages.iter().find(|m| m.get("result").is_some() || m.get("error").is_some());
        match response.or(messages.last()) {
            Some(message) => Ok(message.clone()),
            None => bail!("no JSON-RPC message in the event stream: {}", self.body),
        }
    }

    /// For `tools/call`: the text of the first content item of the result.
    pub fn tool_text(&self) -> Result<String> {
        let message = self.json()?;
        match message.pointer("/result/content/0/text").and_then(Value::as_str) {
            Some(text) => Ok(text.to_owned()),
            None => bail!("not a tools/call result with text content: {message}"),
        }
    }
}

/// The `data` of each event in an SSE body (multi-line data joined by `\n`).
fn sse_data(body: &str) -> impl Iterator<Item = String> + '_ {
    body.split("\n\n").filter_map(|event| {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        (!data.is_empty() && data.iter().any(|d| !d.is_empty())).then(|| data.join("\n"))
    })
}

pub fn request(id: u64, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

pub fn notification(method: &str) -> Value {
    json!({ "jsonrpc": "2.0", "method": method })
}

pub fn initialize_request(id: u64) -> Value {
    request(
        id,
        "initialize",
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "sekisho-e2e", "version": env!("CARGO_PKG_VERSION") },
        }),
    )
}

impl Stack {
    /// POSTs one JSON-RPC message to `path` (e.g. `/mcp/demo`) through Envoy,
    /// with `Authorization: Bearer <bearer>` when given.
    pub fn mcp_post(&self, path: &str, bearer: Option<&str>, body: &Value) -> Result<McpResponse> {
        let authorization = bearer.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization.as_deref().map(|a| ("authorization", a)).into_iter().collect();
        self.mcp_post_with(path, &headers, body)
    }

    /// Like [`Stack::mcp_post`] with arbitrary extra headers (credentials,
    /// session, spoofed identity headers). `path` may carry a query.
    pub fn mcp_post_with(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Result<McpResponse> {
        let url = format!("{}{path}", self.base_url());
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body.to_string()).send().with_context(|| format!("POST {url}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().with_context(|| format!("reading the answer of POST {url}"))?;
        Ok(McpResponse { status, headers, body })
    }

    /// Initializes an MCP session at `path` and returns its `Mcp-Session-Id`
    /// (after sending `notifications/initialized`, as clients do).
    pub fn initialize(&self, path: &str, bearer: Option<&str>) -> Result<String> {
        Ok(self.session(path, bearer)?.id().to_owned())
    }

    /// An initialized session that sends the session and protocol headers.
    pub fn session(&self, path: &str, bearer: Option<&str>) -> Result<McpSession<'_>> {
        let authorization = bearer.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization.as_deref().map(|a| ("authorization", a)).into_iter().collect();
        self.session_with(path, &headers)
    }

    /// An initialized session whose every request carries `credentials`
    /// (e.g. `x-api-key`); `path` may carry a query (`?api-key=`).
    pub fn session_with(&self, path: &str, credentials: &[(&str, &str)]) -> Result<McpSession<'_>> {
        let response = self.mcp_post_with(path, credentials, &initialize_request(1))?;
        if response.status != 200 {
            bail!("initialize at {path} answered {}: {}", response.status, response.body);
        }
        let Some(id) = response.header("mcp-session-id") else {
            bail!("initialize at {path} returned no Mcp-Session-Id");
        };
        let session = McpSession {
            stack: self,
            path: path.to_owned(),
            credentials: credentials.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            id: id.to_owned(),
            next_id: Cell::new(2),
        };
        let initialized = session.post(&notification("notifications/initialized"))?;
        if !(200..300).contains(&initialized.status) {
            bail!("notifications/initialized answered {}: {}", initialized.status, initialized.body);
        }
        Ok(session)
    }
}

pub struct McpSession<'s> {
    stack: &'s Stack,
    path: String,
    credentials: Vec<(String, String)>,
    id: String,
    next_id: Cell<u64>,
}

impl McpSession<'_> {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends `body` in this session.
    pub fn post(&self, body: &Value) -> Result<McpResponse> {
        self.post_with(&[], body)
    }

    /// Sends `body` in this session with extra headers.
    pub fn post_with(&self, extra: &[(&str, &str)], body: &Value) -> Result<McpResponse> {
        let mut headers: Vec<(&str, &str)> =
            vec![("mcp-session-id", &self.id), ("mcp-protocol-version", PROTOCOL_VERSION)];
        headers.extend(self.credentials.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        headers.extend_from_slice(extra);
        self.stack.mcp_post_with(&self.path, &headers, body)
    }

    /// A request with the next id.
    pub fn request(&self, method: &str, params: Value) -> Result<McpResponse> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.post(&request(id, method, params))
    }

    /// `tools/call` of `name` with `arguments`.
    pub fn call_tool(&self, name: &str, arguments: Value) -> Result<McpResponse> {
        self.request("tools/call", json!({ "name": name, "arguments": arguments }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_response_in_an_event_stream() {
        let body = "id: 0\ndata:\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\n data: \"result\":{}}\n\n";
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "text/event-stream".parse().unwrap());
        let response = McpResponse { status: 200, headers, body: body.replace("\n data", "\ndata") };
        assert_eq!(response.json().unwrap()["id"], 1);
    }
}
