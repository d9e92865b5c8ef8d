//! [`Stack`]: Envoy with the sekisho filter, `sekisho-authz` and the demo MCP
//! server, started on loopback for one test (or in the foreground for `cargo
//! xtask up`), and stopped — every process — when dropped.
//!
//! Start-up order: make the TLS certificates and the database if asked for;
//! render the Envoy configuration; start the demo server and the service side
//! by side and wait for their health checks; start any further service
//! replicas (after the first has migrated the database); create the
//! instances; start Envoy and wait for `/ready`; then wait until the filter
//! has loaded keys and policy (an MCP request stops getting 503).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::blocking::Client;
use tempfile::TempDir;
use xtask::envoy_config::{self, EnvoyVars, Upstream};

use crate::binaries::Binaries;
use crate::options::StackOptions;
use crate::ports::Ports;
use crate::postgres::TestDatabase;
use crate::process::{ManagedProcess, clean_command};
use crate::tls::StackCertificates;
use crate::{mcp, random, tls, wait};

/// Keep a test's temporary data directory (and logs) even when it passes.
pub const ENV_KEEP_DATA: &str = "SEKISHO_E2E_KEEP";

pub(crate) const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
const FILTER_TIMEOUT: Duration = Duration::from_secs(30);
/// Consecutive non-503 answers (fresh connections) that count as "every
/// worker's filter is ready": the chance that one of two workers was never
/// probed is 2⁻¹⁵.
const FILTER_READY_RUN: u32 = 16;
/// Start-ups tried when freshly picked ports turn out to be taken.
const PORT_ATTEMPTS: u32 = 3;

pub struct Stack {
    pub(crate) options: StackOptions,
    pub(crate) binaries: Binaries,
    pub(crate) ports: Ports,
    pub(crate) base_url: String,
    pub(crate) admin_token: String,
    pub(crate) data_dir: PathBuf,
    /// `Some` while the directory is temporary and will be removed on drop.
    temporary: Option<TempDir>,
    keep_data: bool,
    pub(crate) http: Client,
    certificates: Option<StackCertificates>,
    // Stopped in this order: the listener first, its upstreams after.
    pub(crate) envoy: Option<ManagedProcess>,
    pub(crate) authz: Option<ManagedProcess>,
    /// Service replicas beyond the first (`authz_replicas` > 1).
    pub(crate) more_authz: Vec<Replica>,
    demo: Option<ManagedProcess>,
    /// Dropped after every process: no replica is connected any more.
    database: Option<TestDatabase>,
}

/// A further `sekisho-authz` replica: its port, and its process while it runs.
pub(crate) struct Replica {
    pub(crate) port: u16,
    pub(crate) process: Option<ManagedProcess>,
}

/// One captured output stream of one process.
#[derive(Debug, Clone)]
pub struct LogFile {
    /// e.g. `envoy.stdout.log` (Envoy's access log).
    pub name: String,
    pub text: String,
}

impl Stack {
    pub fn start(options: StackOptions) -> Result<Stack> {
        let binaries = Binaries::locate()?;
        let mut attempt = 1;
        loop {
            let ports = match options.ports {
                Some(ports) => ports,
                None => Ports::free()?,
            };
            let mut stack = Stack::prepare(options.clone(), binaries.clone(), ports)?;
            let Err(error) = stack.boot() else {
                return Ok(stack);
            };
            // Free ports are only free until someone binds them: a parallel
            // test may have won the race. Another set of ports then.
            let clash = format!("{error:#}").contains("already in use");
            if options.ports.is_none() && clash && attempt < PORT_ATTEMPTS {
                attempt += 1;
                continue;
            }
            stack.keep_data = true;
            let kept = stack.data_dir.display().to_string();
            return Err(error.context(format!("the stack did not start (data kept in {kept})")));
        }
    }

    /// Everything but the processes: data directory, admin token, client,
    /// certificates, database, replica ports.
    fn prepare(mut options: StackOptions, binaries: Binaries, ports: Ports) -> Result<Stack> {
        let (data_dir, temporary) = match &options.data_dir {
            Some(dir) => (dir.clone(), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("sekisho-e2e-")
                    .tempdir()
                    .context("cannot create a temporary data directory")?;
                (dir.path().to_path_buf(), Some(dir))
            }
        };
        for dir in [data_dir.join("logs"), data_dir.join("authz")] {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let admin_token = match &options.admin_token {
            Some(token) => token.clone(),
            None => random::hex_token()?,
        };
        crate::secret_scan::register("admin_token", &admin_token);
        let certificates = match options.tls {
            true => Some(tls::generate(&options.tls_dir.clone().unwrap_or_else(|| data_dir.join("tls")))?),
            false => None,
        };
        let http = match &certificates {
            Some(certificates) => crate::http::client_trusting(&certificates.ca)?,
            None => crate::http::client_builder().build().context("cannot build the HTTP client")?,
        };
        let database = match options.fresh_postgres {
            true => Some(TestDatabase::create()?),
            false => None,
        };
        if let Some(database) = &database {
            options.database_url = Some(database.url.clone());
        }
        if options.authz_replicas == 0 {
            bail!("a stack needs at least one sekisho-authz replica");
        }
        let on_postgres = options.database_url.as_deref().is_some_and(|url| url.starts_with("postgres"));
        if options.authz_replicas > 1 && !on_postgres {
            bail!("several sekisho-authz replicas share one PostgreSQL database: set DATABASE_URL=postgresql://…");
        }
        let mut more_authz = Vec::new();
        if options.authz_replicas > 1 {
            // Replicas are interchangeable only if they unseal the same keys.
            if !options.authz_env.iter().any(|(name, _)| name == "SEKISHO_MASTER_KEY") {
                let key = STANDARD.encode(random::bytes::<32>()?);
                options.authz_env.push(("SEKISHO_MASTER_KEY".to_owned(), key));
            }
            for port in crate::ports::free_ports(options.authz_replicas - 1)? {
                more_authz.push(Replica { port, process: None });
            }
        }
        let scheme = if certificates.is_some() { "https" } else { "http" };
        Ok(Stack {
            options,
            binaries,
            ports,
            base_url: format!("{scheme}://127.0.0.1:{}", ports.envoy),
            admin_token,
            data_dir,
            temporary,
            keep_data: false,
            http,
            certificates,
            envoy: None,
            authz: None,
            more_authz,
            demo: None,
            database,
        })
    }

    fn boot(&mut self) -> Result<()> {
        let config = self.envoy_config_path();
        envoy_config::render_to_file(&self.envoy_vars(), &config)?;

        // Both start at once; they do not depend on each other.
        let demo_url = format!("http://127.0.0.1:{}/healthz", self.ports.demo);
        let mut demo = self.spawn_demo()?;
        let mut authz = self.spawn_authz()?;
        wait::until(&mut demo, "the demo MCP server is healthy", HEALTH_TIMEOUT, || self.is_ok(&demo_url))?;
        self.demo = Some(demo);
        self.wait_authz_healthy(&mut authz)?;
        self.authz = Some(authz);
        crate::secret_scan::register_master_keys(self);
        for replica in 1..self.options.authz_replicas {
            self.start_authz_replica(replica)?;
        }

        for instance in self.options.instances.clone() {
            self.create_instance(&instance.id, &instance.auth_mode)?;
        }

        let mut envoy = self.spawn_envoy(&config)?;
        let ready_url = format!("{}/ready", self.envoy_admin_url());
        wait::until(&mut envoy, "Envoy is ready", HEALTH_TIMEOUT, || self.is_ok(&ready_url))?;
        if let (true, Some(first)) = (self.options.wait_for_filter, self.options.instances.first()) {
            // Each Envoy worker has its own VM, and the kernel spreads new
            // connections over the workers at random: only a run of answers
            // on fresh connections shows that every VM is ready, not just one.
            let path = format!("/mcp/{}", first.id);
            let probe = mcp::initialize_request(0);
            wait::until(&mut envoy, "the filter has loaded keys and policy", FILTER_TIMEOUT, || {
                for _ in 0..FILTER_READY_RUN {
                    if self.mcp_post_with(&path, &[("connection", "close")], &probe)?.status == 503 {
                        return Ok(false);
                    }
                }
                Ok(true)
            })?;
        }
        self.envoy = Some(envoy);
        Ok(())
    }

    fn envoy_vars(&self) -> EnvoyVars {
        let ports = self.ports;
        let mut vars =
            EnvoyVars::loopback(ports.envoy, ports.envoy_admin, ports.authz, ports.demo, &self.binaries.filter_wasm);
        vars.authz.extend(self.more_authz.iter().map(|replica| Upstream::new("127.0.0.1", replica.port)));
        vars.filter_refresh_seconds = self.options.filter_refresh_seconds;
        vars.mcp_rate_limit = self.options.mcp_rate_limit;
        vars.tls = self.certificates.as_ref().map(|certificates| certificates.server.clone());
        vars
    }

    fn spawn_demo(&self) -> Result<ManagedProcess> {
        let mut cmd = clean_command(&self.binaries.demo_mcp);
        cmd.arg("--listen").arg(format!("127.0.0.1:{}", self.ports.demo));
        ManagedProcess::spawn("demo-mcp", cmd, &self.log_dir())
    }

    pub(crate) fn spawn_envoy(&self, config: &Path) -> Result<ManagedProcess> {
        let mut cmd = clean_command(&self.binaries.envoy);
        // --disable-hot-restart: without it every Envoy claims the shared
        // memory and domain socket of base id 0, and a second stack on the
        // machine fails with "unable to bind domain socket with base_id=0".
        cmd.arg("-c")
            .arg(config)
            .arg("--concurrency")
            .arg(self.options.envoy_concurrency.to_string())
            .arg("--disable-hot-restart")
            .args(["--log-level", "info"]);
        ManagedProcess::spawn("envoy", cmd, &self.log_dir())
    }

    pub(crate) fn is_ok(&self, url: &str) -> Result<bool> {
        Ok(self.http.get(url).timeout(Duration::from_secs(2)).send()?.status().is_success())
    }

    /// Fails if any process of the stack has exited, quoting its log.
    pub fn check_alive(&mut self) -> Result<()> {
        let replicas = self.more_authz.iter_mut().map(|replica| &mut replica.process);
        for process in [&mut self.envoy, &mut self.authz, &mut self.demo].into_iter().chain(replicas).flatten() {
            if let Some(status) = process.exited() {
                bail!("{} exited ({status})\n{}", process.name(), process.log_tail(40));
            }
        }
        Ok(())
    }

    /// Envoy's statistics whose names contain `sekisho`, as `/stats` prints them.
    pub fn envoy_stats(&self) -> Result<String> {
        let url = format!("{}/stats?filter=sekisho", self.envoy_admin_url());
        let response = self.http.get(url).send()?.error_for_status()?;
        Ok(response.text()?)
    }

    /// Every captured stdout and stderr so far.
    pub fn logs(&self) -> Result<Vec<LogFile>> {
        let mut logs = Vec::new();
        for entry in std::fs::read_dir(self.log_dir())? {
            let path = entry?.path();
            let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            logs.push(LogFile { name, text });
        }
        logs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(logs)
    }

    /// The public base URL (Envoy's listener), which is also the issuer:
    /// `https://` when the stack has TLS.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The CA that signed Envoy's certificate (PEM), when the stack has TLS.
    pub fn ca_certificate(&self) -> Option<&Path> {
        self.certificates.as_ref().map(|certificates| certificates.ca.as_path())
    }

    pub fn envoy_admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.envoy_admin)
    }

    /// The service itself, bypassing Envoy (admin API, health).
    pub fn authz_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.authz)
    }

    pub fn ports(&self) -> Ports {
        self.ports
    }

    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    pub fn envoy_config_path(&self) -> PathBuf {
        self.data_dir.join("envoy.yaml")
    }

    pub fn binaries(&self) -> &Binaries {
        &self.binaries
    }

    /// The client the harness uses: no proxy, no redirects, 10 s timeout;
    /// with TLS, it trusts the stack's CA and nothing else.
    pub fn http(&self) -> &Client {
        &self.http
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let replicas: Vec<Option<ManagedProcess>> =
            self.more_authz.iter_mut().map(|replica| replica.process.take()).collect();
        for process in [self.envoy.take(), self.authz.take()].into_iter().chain(replicas).chain([self.demo.take()]) {
            drop(process);
        }
        crate::secret_scan::archive(self);
        drop(self.database.take());
        let keep = self.keep_data || std::thread::panicking() || std::env::var_os(ENV_KEEP_DATA).is_some();
        if let (true, Some(dir)) = (keep, self.temporary.take()) {
            eprintln!("sekisho-e2e: stack data and logs kept in {}", dir.keep().display());
        }
    }
}
