//! The service in a stack: its processes (started, stopped, started again on
//! the same data; one or several replicas), its CLI, and the admin API the
//! harness drives (instances, tokens, key rotation). The admin API is called
//! on the service's own port: Envoy does not route `/admin/` from outside.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::process::{ManagedProcess, clean_command};
use crate::stack::{HEALTH_TIMEOUT, Stack};
use crate::wait;

/// The `client_id` of tokens the harness mints.
pub const TEST_CLIENT_ID: &str = "sekisho-e2e";
/// Lifetime of minted tokens, seconds.
pub const TEST_TOKEN_TTL: u64 = 900;

impl Stack {
    pub(crate) fn spawn_authz(&self) -> Result<ManagedProcess> {
        self.spawn_authz_replica(0)
    }

    /// Replica 0 logs as `authz`, the others as `authz-<n>`.
    fn spawn_authz_replica(&self, replica: usize) -> Result<ManagedProcess> {
        let name = if replica == 0 { "authz".to_owned() } else { format!("authz-{replica}") };
        let mut cmd = clean_command(&self.binaries.authz);
        cmd.arg("serve").env("SEKISHO_LISTEN", format!("127.0.0.1:{}", self.authz_replica_port(replica)?));
        cmd.envs(self.authz_cli_env());
        ManagedProcess::spawn(&name, cmd, &self.log_dir())
    }

    pub(crate) fn wait_authz_healthy(&self, authz: &mut ManagedProcess) -> Result<()> {
        self.wait_replica_healthy(0, authz)
    }

    fn wait_replica_healthy(&self, replica: usize, authz: &mut ManagedProcess) -> Result<()> {
        let url = format!("{}/health", self.authz_replica_url(replica)?);
        wait::until(authz, "sekisho-authz is healthy", HEALTH_TIMEOUT, || self.is_ok(&url))
    }

    fn authz_replica_port(&self, replica: usize) -> Result<u16> {
        match replica {
            0 => Ok(self.ports.authz),
            n => match self.more_authz.get(n - 1) {
                Some(more) => Ok(more.port),
                None => bail!("the stack has {} sekisho-authz replicas, not {}", self.more_authz.len() + 1, n + 1),
            },
        }
    }

    /// Replica `replica` (0-based) of the service, bypassing Envoy.
    pub fn authz_replica_url(&self, replica: usize) -> Result<String> {
        Ok(format!("http://127.0.0.1:{}", self.authz_replica_port(replica)?))
    }

    /// Stops one replica; Envoy keeps the others.
    pub fn stop_authz_replica(&mut self, replica: usize) -> Result<()> {
        self.authz_replica_port(replica)?;
        let process = match replica {
            0 => self.authz.take(),
            n => self.more_authz[n - 1].process.take(),
        };
        if let Some(mut process) = process {
            process.stop();
        }
        Ok(())
    }

    /// Starts one replica (again) on its port; waits for `/health`.
    pub fn start_authz_replica(&mut self, replica: usize) -> Result<()> {
        self.authz_replica_port(replica)?;
        let running = match replica {
            0 => self.authz.is_some(),
            n => self.more_authz[n - 1].process.is_some(),
        };
        if running {
            bail!("sekisho-authz replica {replica} is already running");
        }
        let mut process = self.spawn_authz_replica(replica)?;
        self.wait_replica_healthy(replica, &mut process)?;
        match replica {
            0 => self.authz = Some(process),
            n => self.more_authz[n - 1].process = Some(process),
        }
        Ok(())
    }

    /// The environment under which `sekisho-authz` (server or CLI) sees this
    /// stack's data, issuer and admin token.
    pub fn authz_cli_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("PUBLIC_BASE_URL".to_owned(), self.base_url.clone()),
            ("SEKISHO_DATA_DIR".to_owned(), self.data_dir.join("authz").to_string_lossy().into_owned()),
            ("SEKISHO_ADMIN_TOKEN".to_owned(), self.admin_token.clone()),
            ("SEKISHO_ENV".to_owned(), "development".to_owned()),
            // The harness is the operator: tests mint tokens and create keys
            // through the admin API far faster than its default limit allows
            // (a 429 there once failed the key-rotation scenario). Tests of
            // the limits set their own through `authz_env`, which comes later.
            ("SEKISHO_RATE_LIMIT_ADMIN".to_owned(), "off".to_owned()),
        ];
        if let Some(url) = &self.options.database_url {
            env.push(("DATABASE_URL".to_owned(), url.clone()));
        }
        env.extend(self.options.authz_env.iter().cloned());
        env
    }

    /// Runs the `sekisho-authz` CLI against this stack (e.g. `token mint …`)
    /// and returns its stdout.
    pub fn authz_cli(&self, args: &[&str]) -> Result<String> {
        let mut cmd = clean_command(&self.binaries.authz);
        cmd.args(args).envs(self.authz_cli_env());
        let out = cmd.output().context("cannot run sekisho-authz")?;
        if !out.status.success() {
            bail!("sekisho-authz {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr));
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        crate::secret_scan::register_cli_output(args, &stdout);
        Ok(stdout)
    }

    /// Stops the service (Envoy and the filter keep running), to show what
    /// keeps working without it.
    pub fn stop_authz(&mut self) {
        if let Some(mut authz) = self.authz.take() {
            authz.stop();
        }
    }

    /// Starts the service again on the same port and data; waits for `/health`.
    pub fn start_authz(&mut self) -> Result<()> {
        if self.authz.is_some() {
            bail!("sekisho-authz is already running");
        }
        let mut authz = self.spawn_authz()?;
        self.wait_authz_healthy(&mut authz)?;
        self.authz = Some(authz);
        Ok(())
    }

    /// `POST {authz}/admin/v1/{path}` with the admin token; the response's JSON
    /// (or `null` for an empty body). Fails on any status but 2xx.
    pub fn admin_post(&self, path: &str, body: &Value) -> Result<Value> {
        let (status, value) = self.admin_post_status(path, body)?;
        if !(200..300).contains(&status) {
            bail!("POST /admin/v1/{path} answered {status}: {value}");
        }
        Ok(value)
    }

    fn admin_post_status(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let url = format!("{}/admin/v1/{path}", self.authz_url());
        let response = self
            .http
            .post(&url)
            .bearer_auth(self.admin_token())
            .json(body)
            .send()
            .with_context(|| format!("POST {url}"))?;
        let status = response.status().as_u16();
        let text = response.text()?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        crate::secret_scan::register_json(&value);
        Ok((status, value))
    }

    /// Registers an instance; one that exists already is fine (a kept data
    /// directory is started again).
    pub fn create_instance(&self, id: &str, auth_mode: &str) -> Result<()> {
        let (status, body) = self.admin_post_status("instances", &json!({ "id": id, "auth_mode": auth_mode }))?;
        if (200..300).contains(&status) || status == 409 {
            return Ok(());
        }
        bail!("creating instance {id} answered {status}: {body}")
    }

    /// An access token for `instance` with `scope` (space-separated) for `sub`.
    pub fn mint_token(&self, instance: &str, scope: &str, sub: &str) -> Result<String> {
        let body = json!({
            "instance": instance,
            "scope": scope,
            "sub": sub,
            "client_id": TEST_CLIENT_ID,
            "ttl": TEST_TOKEN_TTL,
        });
        let answer = self.admin_post("tokens", &body)?;
        match answer.get("access_token").and_then(Value::as_str) {
            Some(token) => Ok(token.to_owned()),
            None => bail!("POST /admin/v1/tokens answered without access_token: {answer}"),
        }
    }

    /// Rotates the service's signing key.
    pub fn rotate_keys(&self) -> Result<()> {
        self.admin_post("keys/rotate", &json!({})).map(drop)
    }
}
