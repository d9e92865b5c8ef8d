//! The demo server's MCP tools.
//!
//! The tools exist to let gateway tests observe, from the upstream's side,
//! what the gateway forwarded: `whoami` reports the identity headers and
//! credentials that reached this server, and the note tools give a
//! state-changing call next to read-only ones, for testing per-tool policy.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use axum::http::request::Parts;
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::Extension, wrapper::Parameters},
    model::{Implementation, ServerCapabilities, ServerConfig},
    schemars, tool, tool_handler, tool_router,
};
use serde::Deserialize;
use serde_json::json;

/// Notes by instance id. Shared by every session (the SDK builds one handler
/// per session), so a note added in one session is listed in another.
pub type Notes = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// Headers with this prefix carry the identity the gateway adds.
const IDENTITY_HEADER_PREFIX: &str = "x-sekisho-";

/// Where the MCP endpoint is mounted; the path segment after it is the instance id.
pub const MCP_PATH_PREFIX: &str = "/mcp/";

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct TextArgs {
    /// The text.
    pub text: String,
}

#[derive(Clone)]
pub struct DemoServer {
    notes: Notes,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl DemoServer {
    pub fn new(notes: Notes) -> Self {
        Self { notes, tool_router: Self::tool_router() }
    }

    // The streamable HTTP transport puts the `http::request::Parts` of the
    // HTTP request that carried this tools/call into the request context, so
    // these are the headers the gateway forwarded for this very call.
    #[tool(
        description = "Report the identity headers (x-sekisho-*), whether credentials reached the server, the query string and the instance id.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn whoami(&self, Extension(parts): Extension<Parts>) -> Result<String, ErrorData> {
        // Repeated headers are joined rather than deduplicated, so a test can
        // see a client-supplied identity header that the gateway failed to replace.
        let mut identity: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &parts.headers {
            if name.as_str().starts_with(IDENTITY_HEADER_PREFIX) {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                identity
                    .entry(name.as_str().to_owned())
                    .and_modify(|joined| {
                        joined.push_str(", ");
                        joined.push_str(&value);
                    })
                    .or_insert(value);
            }
        }
        let report = json!({
            "headers": identity,
            "authorization_present": parts.headers.contains_key("authorization"),
            "api_key_header_present": parts.headers.contains_key("x-api-key"),
            "query": parts.uri.query(),
            "instance": instance(&parts)?,
        });
        Ok(report.to_string())
    }

    #[tool(
        description = "Return the given text unchanged.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    fn echo(&self, Parameters(TextArgs { text }): Parameters<TextArgs>) -> String {
        text
    }

    #[tool(
        description = "Append a note to this instance's list; returns the number of notes.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    fn add_note(
        &self,
        Extension(parts): Extension<Parts>,
        Parameters(TextArgs { text }): Parameters<TextArgs>,
    ) -> Result<String, ErrorData> {
        let instance = instance(&parts)?;
        // A panic while holding the lock cannot leave a Vec<String> half-updated
        // in a way that matters here, so a poisoned lock is still usable.
        let mut notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        let list = notes.entry(instance.to_owned()).or_default();
        list.push(text);
        Ok(json!({ "instance": instance, "count": list.len() }).to_string())
    }

    #[tool(description = "List this instance's notes.", annotations(read_only_hint = true, open_world_hint = false))]
    fn list_notes(&self, Extension(parts): Extension<Parts>) -> Result<String, ErrorData> {
        let instance = instance(&parts)?;
        let notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        let list = notes.get(instance).cloned().unwrap_or_default();
        Ok(json!({ "instance": instance, "notes": list }).to_string())
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")))
            .with_instructions("Demo upstream for the Sekisho gateway.")
    }
}

/// The instance id: the path segment after `/mcp/`. The router only sends
/// `/mcp/{instance}` here, so a miss means the server was wired differently.
fn instance(parts: &Parts) -> Result<&str, ErrorData> {
    parts
        .uri
        .path()
        .strip_prefix(MCP_PATH_PREFIX)
        .and_then(|rest| rest.split('/').next())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ErrorData::invalid_request("no instance id in the request path", None))
}
