//! Runs the `sekisho-demo-mcp` binary and talks to it the way the gateway's
//! clients do: through the rmcp Streamable HTTP client, and with raw HTTP for
//! what the client hides (the session header, the Host check, the query string).

use std::{collections::HashMap, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use axum::http::{HeaderName, HeaderValue};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, ClientConfig},
    service::RunningService,
    transport::{StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// The server binary, stopped when the test ends (also on failure).
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`
    addr: String,
}

impl Server {
    /// Starts the binary on a free port and reads the bound address from its
    /// "listening" line, so there is no window in which another test takes the port.
    async fn start() -> anyhow::Result<Self> {
        // In `cargo test --workspace` reqwest (ours and rmcp's) is built with
        // the e2e harness's `rustls-no-provider` feature; building a client
        // then panics unless a provider is installed. Installing fails only
        // when one is installed already, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sekisho-demo-mcp"))
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the server")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(30), BufReader::new(stdout).read_line(&mut line))
            .await
            .context("server did not start in time")??;
        let addr = line
            .trim()
            .strip_prefix("demo-mcp listening on http://")
            .with_context(|| format!("unexpected first line: {line:?}"))?
            .to_owned();
        Ok(Self { child, addr })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn connect(
    url: String,
    headers: HashMap<HeaderName, HeaderValue>,
) -> anyhow::Result<RunningService<RoleClient, ClientConfig>> {
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers),
    );
    Ok(ClientConfig::default().serve(transport).await?)
}

/// Calls a tool and returns the text of its single text content.
async fn call(
    client: &RunningService<RoleClient, ClientConfig>,
    name: &'static str,
    arguments: Value,
) -> anyhow::Result<String> {
    let mut params = CallToolRequestParams::new(name);
    if let Value::Object(arguments) = arguments {
        params = params.with_arguments(arguments);
    }
    let result = client.call_tool(params).await?;
    if result.is_error == Some(true) {
        bail!("{name} failed: {result:?}");
    }
    match result.content.as_slice() {
        [content] => Ok(content.as_text().with_context(|| format!("{name}: not text: {content:?}"))?.text.clone()),
        other => bail!("{name}: expected one content block, got {other:?}"),
    }
}

#[tokio::test]
async fn tools_work_through_the_rmcp_client() -> anyhow::Result<()> {
    let server = Server::start().await?;
    let headers = HashMap::from([(HeaderName::from_static("x-sekisho-subject"), HeaderValue::from_static("alice"))]);
    let client = connect(server.url("/mcp/demo"), headers).await?;

    let tools = client.list_all_tools().await?;
    let mut names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(names, ["add_note", "echo", "list_notes", "whoami"]);
    for tool in &tools {
        let read_only = tool.annotations.as_ref().and_then(|a| a.read_only_hint);
        let expected = tool.name != "add_note";
        assert_eq!(read_only, Some(expected), "readOnlyHint of {}", tool.name);
    }

    assert_eq!(call(&client, "echo", json!({"text": "hi"})).await?, "hi");

    let first: Value = serde_json::from_str(&call(&client, "add_note", json!({"text": "one"})).await?)?;
    assert_eq!(first["count"], 1);
    let second: Value = serde_json::from_str(&call(&client, "add_note", json!({"text": "two"})).await?)?;
    assert_eq!(second["count"], 2);
    let notes: Value = serde_json::from_str(&call(&client, "list_notes", json!({})).await?)?;
    assert_eq!(notes["notes"], json!(["one", "two"]));

    let whoami: Value = serde_json::from_str(&call(&client, "whoami", json!({})).await?)?;
    assert_eq!(whoami["headers"], json!({"x-sekisho-subject": "alice"}));
    assert_eq!(whoami["authorization_present"], false);
    assert_eq!(whoami["api_key_header_present"], false);
    assert_eq!(whoami["query"], Value::Null);
    assert_eq!(whoami["instance"], "demo");

    // Notes are kept per instance; a new session on the same instance sees them.
    let other = connect(server.url("/mcp/other"), HashMap::new()).await?;
    let notes: Value = serde_json::from_str(&call(&other, "list_notes", json!({})).await?)?;
    assert_eq!(notes, json!({"instance": "other", "notes": []}));
    let again = connect(server.url("/mcp/demo"), HashMap::new()).await?;
    let notes: Value = serde_json::from_str(&call(&again, "list_notes", json!({})).await?)?;
    assert_eq!(notes["notes"], json!(["one", "two"]));

    client.cancel().await?;
    other.cancel().await?;
    again.cancel().await?;
    Ok(())
}

/// The JSON-RPC message in a response body, which is SSE (`data: {...}`) in
/// session mode, or plain JSON.
fn jsonrpc_message(body: &str) -> anyhow::Result<Value> {
    let json = body
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| data.starts_with('{'))
        .unwrap_or(body);
    serde_json::from_str(json).with_context(|| format!("no JSON-RPC message in {body:?}"))
}

/// A raw HTTP client for one server instance's MCP endpoint.
struct RawMcp {
    http: reqwest::Client,
    url: String,
    session: Option<String>,
}

impl RawMcp {
    fn post(&self, query: &str, body: &Value) -> reqwest::RequestBuilder {
        let request = self
            .http
            .post(format!("{}{query}", self.url))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        match &self.session {
            Some(session) => request.header("mcp-session-id", session).header("mcp-protocol-version", "2025-06-18"),
            None => request,
        }
    }

    /// initialize + notifications/initialized, keeping the session id.
    async fn open_session(&mut self) -> anyhow::Result<()> {
        let response = self.post("", &initialize()).send().await?;
        assert_eq!(response.status(), 200);
        let session = response.headers().get("mcp-session-id").context("no Mcp-Session-Id")?.to_str()?.to_owned();
        let result = jsonrpc_message(&response.text().await?)?;
        assert_eq!(result["result"]["protocolVersion"], "2025-06-18");
        self.session = Some(session);

        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(self.post("", &initialized).send().await?.status(), 202);
        Ok(())
    }
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
}

#[tokio::test]
async fn raw_http_session_host_check_and_headers() -> anyhow::Result<()> {
    let server = Server::start().await?;
    let http = reqwest::Client::new();

    let health = http.get(server.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await?, "ok");

    let port = server.addr.rsplit(':').next().context("no port")?;
    let mut mcp = RawMcp {
        http,
        // Host `localhost:PORT`, as a client going through Envoy would send it.
        url: format!("http://localhost:{port}/mcp/demo"),
        session: None,
    };
    mcp.open_session().await?;

    // The headers and query string of the tools/call request itself are reported.
    let whoami = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}});
    let response = mcp
        .post("?tenant=t1", &whoami)
        .header("authorization", "Bearer leaked")
        .header("x-api-key", "leaked")
        .header("x-sekisho-subject", "bob")
        .header("x-sekisho-scopes", "read")
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let message = jsonrpc_message(&response.text().await?)?;
    let text = message["result"]["content"][0]["text"].as_str().with_context(|| format!("no text in {message}"))?;
    let report: Value = serde_json::from_str(text)?;
    assert_eq!(
        report,
        json!({
            "headers": {"x-sekisho-subject": "bob", "x-sekisho-scopes": "read"},
            "authorization_present": true,
            "api_key_header_present": true,
            "query": "tenant=t1",
            "instance": "demo",
        })
    );

    // DNS-rebinding protection: a foreign Host is refused before any MCP handling.
    mcp.session = None;
    let refused = mcp.post("", &initialize()).header("host", "attacker.example").send().await?;
    assert_eq!(refused.status(), 403);
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_server_with_an_sse_stream_open() -> anyhow::Result<()> {
    let mut server = Server::start().await?;
    let mut mcp = RawMcp { http: reqwest::Client::new(), url: server.url("/mcp/demo"), session: None };
    mcp.open_session().await?;
    // The standalone GET stream stays open until the server ends it.
    let stream = mcp
        .http
        .get(&mcp.url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", mcp.session.as_deref().unwrap_or_default())
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await?;
    assert_eq!(stream.status(), 200);

    let pid = server.child.id().context("server already exited")?;
    let status = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status()?;
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .context("server did not stop after SIGTERM")??;
    assert!(exit.success(), "exit status {exit}");
    drop(stream);
    Ok(())
}
