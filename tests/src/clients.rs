//! Real MCP clients against a stack: the Python SDK (`tests/clients/python/`),
//! the TypeScript SDK and headless Chromium (`tests/clients/node/`), each run
//! as a subprocess that talks to Envoy like any client would and prints one
//! JSON report on stdout.
//!
//! Finding the interpreters never installs anything: `cargo xtask test` does
//! that first (`xtask/src/setup/{python_clients,node_clients,browser}.rs`) and
//! exports where they are. A test whose tool is missing fails, saying so.
//!
//! [`RedirectReceiver`] is the client's side of a loopback redirect URI: what
//! a native app listens on to receive the authorization response.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use xtask::{setup, workspace};

use crate::process::{ManagedProcess, clean_command};
use crate::stack::Stack;

const HINT: &str = "run `cargo xtask test` (or `cargo xtask setup`), which installs the client SDKs and Chromium";

/// The interpreter of the client venv, with the pinned `mcp` SDK.
pub fn python() -> Result<PathBuf> {
    setup::python_clients::find().map_err(|e| anyhow!("the Python MCP SDK is not installed ({e:#}): {HINT}"))
}

/// Node.js, with `tests/clients/node/node_modules` installed from the lock.
pub fn node() -> Result<PathBuf> {
    setup::node_clients::find().map_err(|e| anyhow!("the Node.js clients are not installed ({e:#}): {HINT}"))
}

/// Debian's Chromium, for the consent-page test.
pub fn chromium() -> Result<PathBuf> {
    setup::browser::find().map_err(|e| anyhow!("no Chromium ({e:#}): {HINT}"))
}

pub fn python_script(name: &str) -> PathBuf {
    workspace::clients_dir().join("python").join(name)
}

pub fn node_script(name: &str) -> PathBuf {
    workspace::clients_dir().join("node").join(name)
}

/// One finished client run.
#[derive(Debug)]
pub struct ClientRun {
    pub name: String,
    pub status: ExitStatus,
    /// The last line of stdout as JSON (`Value::Null` if it was not JSON).
    pub report: Value,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl ClientRun {
    /// The report, if the client exited 0 and reported `"ok": true`;
    /// otherwise panics with what it printed.
    pub fn expect_ok(&self) -> &Value {
        if !self.status.success() || self.report["ok"] != Value::Bool(true) {
            panic!(
                "client `{}` failed ({}) after {:.1?}: {}\n--- stdout\n{}\n--- stderr (last 60 lines)\n{}",
                self.name,
                self.status,
                self.elapsed,
                self.report.get("error").and_then(Value::as_str).unwrap_or("no error in its report"),
                self.stdout.trim_end(),
                tail(&self.stderr, 60),
            );
        }
        &self.report
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Stack {
    /// Runs `program script` with a clean environment plus `env`, its output
    /// in the stack's log directory (`client-<name>-<n>.{stdout,stderr}.log`),
    /// killed (with its process group: a browser too) after `timeout`.
    pub fn run_client(
        &self,
        name: &str,
        program: &Path,
        script: &Path,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<ClientRun> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let log_name = format!("client-{name}-{}", RUNS.fetch_add(1, Ordering::Relaxed));
        let mut cmd = clean_command(program);
        cmd.arg(script).current_dir(script.parent().unwrap_or(Path::new(".")));
        // Python: no __pycache__ in the source tree.
        cmd.env("PYTHONDONTWRITEBYTECODE", "1");
        for (key, value) in env {
            cmd.env(key, value);
        }
        let started = Instant::now();
        let mut process = ManagedProcess::spawn(&log_name, cmd, &self.log_dir())?;
        let status = loop {
            if let Some(status) = process.exited() {
                break status;
            }
            if started.elapsed() > timeout {
                process.stop();
                bail!("client `{name}` still running after {timeout:?}; killed\n{}", process.log_tail(60));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Anything it left behind in its group (a browser that outlived node).
        process.stop();
        let elapsed = started.elapsed();
        let read = |stream: &str| -> Result<String> {
            let path = self.log_dir().join(format!("{log_name}.{stream}.log"));
            Ok(String::from_utf8_lossy(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)
                .into_owned())
        };
        let stdout = read("stdout")?;
        let stderr = read("stderr")?;
        let report = stdout
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or(Value::Null);
        eprintln!("client `{name}` exited ({status}) after {elapsed:.1?}");
        Ok(ClientRun { name: name.to_owned(), status, report, stdout, stderr, elapsed })
    }

    /// [`Stack::run_client`] with the Python SDK interpreter.
    pub fn run_python_client(&self, script: &str, env: &[(&str, &str)], timeout: Duration) -> Result<ClientRun> {
        self.run_client(script.trim_end_matches(".py"), &python()?, &python_script(script), env, timeout)
    }

    /// [`Stack::run_client`] with Node.js, for a script in `tests/clients/node`.
    pub fn run_node_client(&self, script: &str, env: &[(&str, &str)], timeout: Duration) -> Result<ClientRun> {
        self.run_client(script.trim_end_matches(".mjs"), &node()?, &node_script(script), env, timeout)
    }

    /// The events the service audited, newest first (`audit list --json`),
    /// optionally only those named `event` (e.g. `token.issued`).
    pub fn audit_events(&self, event: Option<&str>) -> Result<Vec<Value>> {
        let mut args = vec!["audit", "list", "--json", "--limit", "1000"];
        if let Some(event) = event {
            args.extend(["--event", event]);
        }
        let text = self.authz_cli(&args)?;
        let value: Value = serde_json::from_str(&text).with_context(|| format!("audit list is not JSON: {text}"))?;
        match value {
            Value::Array(events) => Ok(events),
            other => Ok(other.get("events").and_then(Value::as_array).cloned().unwrap_or_default()),
        }
    }
}

/// A request that reached a [`RedirectReceiver`].
#[derive(Debug, Clone)]
pub struct ReceivedRedirect {
    /// The request target, e.g. `/callback?code=…&state=…&iss=…`.
    pub target: String,
}

impl ReceivedRedirect {
    /// The first value of query parameter `name`, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| percent_decode(v))
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// A loopback HTTP listener standing in for a native client's redirect URI:
/// records every request target and answers with a small page. Stops when
/// dropped.
pub struct RedirectReceiver {
    port: u16,
    received: Arc<Mutex<Vec<ReceivedRedirect>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RedirectReceiver {
    pub fn start() -> Result<RedirectReceiver> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port for the redirect URI")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::Builder::new().name("redirect-receiver".into()).spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Some(target) = answer(stream) {
                                received
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .push(ReceivedRedirect { target });
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })?
        };
        Ok(RedirectReceiver { port, received, stop, thread: Some(thread) })
    }

    /// `http://127.0.0.1:<port>/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// The requests to `/callback` so far (not the browser's `/favicon.ico`).
    pub fn callbacks(&self) -> Vec<ReceivedRedirect> {
        let all = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        all.iter().filter(|r| r.path() == "/callback").cloned().collect()
    }

    /// Waits up to `timeout` for the `n`th callback.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Result<ReceivedRedirect> {
        let start = Instant::now();
        loop {
            if let Some(found) = self.callbacks().get(n - 1) {
                return Ok(found.clone());
            }
            if start.elapsed() > timeout {
                bail!("no redirect #{n} to {} within {timeout:?}", self.redirect_uri());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedirectReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request's head, answers 200 with a page, returns the target.
fn answer(stream: TcpStream) -> Option<String> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let target = request_line.split_whitespace().nth(1)?.to_owned();
    let body =
        "<!doctype html><title>Done</title><p>The application received the answer. You can close this window.</p>";
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    Some(target)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
