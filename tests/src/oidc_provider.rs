//! [`OidcProvider`]: a real OpenID provider on loopback standing in for Auth0
//! — the npm package `oidc-provider` (OpenID-certified), run from
//! `tests/providers/oidc/provider.mjs` on the Node 22 installed there — with
//! one user ([`OidcProvider::USER`]) and one confidential client for Sekisho.
//!
//! It is started before the [`Stack`](crate::Stack) it serves: its client's
//! redirect URI names the stack's public port, so the ports are chosen first
//! ([`Ports::free`](crate::Ports::free)) and the stack gets
//! [`OidcProvider::authz_env`]. Stopped (its process group) when dropped;
//! [`OidcProvider::stop`] and [`OidcProvider::start_again`] (same port, same
//! signing keys) are for fault tests.
//!
//! Finding Node never installs anything: `cargo xtask test` / `setup` runs
//! `npm ci` there first (`xtask::setup::oidc_provider`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::blocking::Client;
use serde_json::Value;
use tempfile::TempDir;
use xtask::setup;

use crate::process::{ManagedProcess, clean_command};
use crate::{random, wait};

const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct OidcProviderOptions {
    /// Where it listens (127.0.0.1); its issuer is `http://127.0.0.1:{port}`.
    pub port: u16,
    /// Sekisho's callback, `{PUBLIC_BASE_URL}/oauth/callback`.
    pub redirect_uri: String,
    /// Enables `POST /test-only/next-id-token` (see provider.mjs). Tests only.
    pub test_only_misbehaviour: bool,
    /// Keys and logs; a temporary directory when `None` (kept if the test panics).
    pub data_dir: Option<PathBuf>,
}

impl OidcProviderOptions {
    /// A free port, for the stack whose public port is `envoy_port`.
    pub fn for_stack(envoy_port: u16) -> Result<OidcProviderOptions> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("cannot find a free port for the OIDC provider")?
            .port();
        Ok(OidcProviderOptions {
            port,
            redirect_uri: format!("http://127.0.0.1:{envoy_port}/oauth/callback"),
            test_only_misbehaviour: false,
            data_dir: None,
        })
    }
}

pub struct OidcProvider {
    options: OidcProviderOptions,
    dir: PathBuf,
    temporary: Option<TempDir>,
    client_secret: String,
    process: Option<ManagedProcess>,
    http: Client,
}

impl OidcProvider {
    /// Sekisho's client id at the provider.
    pub const CLIENT_ID: &str = "sekisho";
    /// The one user: login and password.
    pub const USER: (&str, &str) = ("alice", "wonderland");

    pub fn start(options: OidcProviderOptions) -> Result<OidcProvider> {
        let (dir, temporary) = match &options.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::Builder::new().prefix("sekisho-oidc-").tempdir()?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut provider = OidcProvider {
            options,
            dir,
            temporary,
            client_secret: random::hex_token()?,
            process: None,
            http: crate::http::client_builder().build()?,
        };
        provider.start_again()?;
        Ok(provider)
    }

    /// Starts the stopped provider again: same port, client and signing keys.
    pub fn start_again(&mut self) -> Result<()> {
        if self.process.is_some() {
            bail!("the OIDC provider is already running");
        }
        let node = setup::oidc_provider::find().map_err(|e| {
            anyhow!("the OIDC provider is not installed ({e:#}): run `cargo xtask test` or `cargo xtask setup`")
        })?;
        let script = setup::oidc_provider::script();
        let mut cmd = clean_command(&node);
        cmd.arg(&script)
            .current_dir(setup::oidc_provider::dir())
            .env("PORT", self.options.port.to_string())
            .env("CLIENT_ID", Self::CLIENT_ID)
            .env("CLIENT_SECRET", &self.client_secret)
            .env("REDIRECT_URI", &self.options.redirect_uri)
            .env("KEYS_FILE", self.dir.join("signing-keys.json"));
        if self.options.test_only_misbehaviour {
            cmd.env("TEST_ONLY_MISBEHAVIOUR", "1");
        }
        let mut process = ManagedProcess::spawn("oidc-provider", cmd, &self.dir)?;
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer());
        wait::until(&mut process, "the OIDC provider serves discovery", START_TIMEOUT, || {
            Ok(self.http.get(&discovery).send()?.status().is_success())
        })?;
        self.process = Some(process);
        Ok(())
    }

    /// Stops it (SIGTERM to its process group): the provider is down.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// `Some` once a started provider has exited by itself.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.as_mut().and_then(ManagedProcess::exited)
    }

    /// `http://127.0.0.1:{port}`, byte for byte as its discovery document spells it.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.options.port)
    }

    /// What points `sekisho-authz` at this provider.
    pub fn authz_env(&self) -> Vec<(String, String)> {
        vec![
            ("SEKISHO_OIDC_ISSUER".into(), self.issuer()),
            ("SEKISHO_OIDC_CLIENT_ID".into(), Self::CLIENT_ID.into()),
            ("SEKISHO_OIDC_CLIENT_SECRET".into(), self.client_secret.clone()),
        ]
    }

    /// The next ID token carries `claims` instead of its own values, re-signed
    /// with the provider's own key (test-only; see provider.mjs).
    pub fn tamper_next_id_token(&self, claims: &Value) -> Result<()> {
        let url = format!("{}/test-only/next-id-token", self.issuer());
        let response = self.http.post(&url).body(claims.to_string()).send()?;
        if response.status() != 204 {
            bail!("POST {url} answered {} (was the provider started with test_only_misbehaviour?)", response.status());
        }
        Ok(())
    }

    /// Its stdout and stderr so far.
    pub fn log(&self) -> String {
        ["oidc-provider.stdout.log", "oidc-provider.stderr.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
        if let (true, Some(dir)) = (std::thread::panicking(), self.temporary.take()) {
            eprintln!("sekisho-e2e: OIDC provider keys and logs kept in {}", dir.keep().display());
        }
    }
}
