//! `sekisho-stack`: the test harness's [`Stack`] in the foreground, for
//! `cargo xtask up` (which sets up, then becomes this program).
//!
//! Starts Envoy, `sekisho-authz` and the demo MCP server on fixed ports with a
//! persistent data directory, prints how to try it, and runs until Ctrl-C or
//! SIGTERM — or until one of the processes dies — then stops them all.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use sekisho_e2e::{OidcProvider, OidcProviderOptions, Ports, Stack, StackOptions};

#[derive(Debug, Parser)]
#[command(about = "Run the Sekisho stack (Envoy + filter, sekisho-authz, demo MCP server) until Ctrl-C")]
struct Cli {
    /// Envoy's public listener (the base URL and issuer).
    #[arg(long, env = "SEKISHO_ENVOY_PORT", default_value_t = Ports::UP_DEFAULTS.envoy)]
    envoy_port: u16,
    /// Envoy's admin interface.
    #[arg(long, env = "SEKISHO_ENVOY_ADMIN_PORT", default_value_t = Ports::UP_DEFAULTS.envoy_admin)]
    envoy_admin_port: u16,
    /// sekisho-authz.
    #[arg(long, env = "SEKISHO_AUTHZ_PORT", default_value_t = Ports::UP_DEFAULTS.authz)]
    authz_port: u16,
    /// The demo MCP server.
    #[arg(long, env = "SEKISHO_DEMO_PORT", default_value_t = Ports::UP_DEFAULTS.demo)]
    demo_port: u16,
    /// Data and logs; kept between runs. Default: .sekisho/data in the repository.
    #[arg(long, env = "SEKISHO_STACK_DATA")]
    data_dir: Option<PathBuf>,
    /// The service's database; SQLite in the data directory by default.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Users log in at a real OpenID provider started on loopback (the npm
    /// `oidc-provider` from tests/providers/oidc, user alice / wonderland),
    /// as they would at Auth0.
    #[arg(long)]
    oidc_provider: bool,
    /// Where that provider listens; its issuer is http://127.0.0.1:<port>.
    #[arg(long, env = "SEKISHO_OIDC_PROVIDER_PORT", default_value_t = 9400)]
    oidc_provider_port: u16,
    /// Serve HTTPS on Envoy's listener, with a certificate from a CA made at
    /// start-up in .sekisho/tls (trust ca.pem there); the issuer becomes https://.
    #[arg(long, env = "SEKISHO_TLS")]
    tls: bool,
    /// sekisho-authz replicas behind Envoy, round robin (more than one needs
    /// DATABASE_URL=postgresql://…); the first listens on --authz-port, the
    /// others on free ports.
    #[arg(long, default_value_t = 1)]
    authz_replicas: usize,
}

/// Service settings taken from this environment, for a stack that talks to
/// a real identity provider or uses fixed keys.
const PASSED_TO_AUTHZ: [&str; 3] = ["AUTH0_", "JWT_", "SEKISHO_MASTER_KEY"];

fn main() -> ExitCode {
    // Before any thread exists, so that every thread inherits the mask and
    // the signals wait for `sigtimedwait` below instead of killing us before
    // the children are stopped. Children get a clean mask (see process.rs).
    let signals = block_termination_signals();
    let cli = Cli::parse();
    match run(cli, &signals) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, signals: &libc::sigset_t) -> Result<()> {
    let data_dir = cli.data_dir.unwrap_or_else(|| xtask::workspace::state_dir().join("data"));
    let mut authz_env: Vec<(String, String)> =
        std::env::vars().filter(|(name, _)| PASSED_TO_AUTHZ.iter().any(|prefix| name.starts_with(prefix))).collect();
    // Started first: its client for Sekisho names the stack's callback.
    let mut provider = None;
    if cli.oidc_provider {
        let started = OidcProvider::start(OidcProviderOptions {
            port: cli.oidc_provider_port,
            redirect_uri: format!(
                "{}://127.0.0.1:{}/oauth/callback",
                if cli.tls { "https" } else { "http" },
                cli.envoy_port
            ),
            test_only_misbehaviour: false,
            data_dir: Some(data_dir.join("oidc-provider")),
        })?;
        authz_env.extend(started.authz_env());
        provider = Some(started);
    }
    let options = StackOptions {
        ports: Some(Ports {
            envoy: cli.envoy_port,
            envoy_admin: cli.envoy_admin_port,
            authz: cli.authz_port,
            demo: cli.demo_port,
        }),
        data_dir: Some(data_dir.clone()),
        database_url: cli.database_url,
        tls: cli.tls,
        tls_dir: Some(xtask::workspace::state_dir().join("tls")),
        authz_replicas: cli.authz_replicas,
        admin_token: std::env::var("SEKISHO_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
        authz_env,
        ..StackOptions::default()
    };
    eprintln!("starting the stack (data and logs in {})", data_dir.display());
    let mut stack = Stack::start(options)?;
    let env_file = write_env_file(&stack)?;
    println!("{}", walkthrough(&stack, &env_file));
    if let Some(provider) = &provider {
        let (user, password) = OidcProvider::USER;
        println!("\nUsers log in at the OpenID provider {} as {user} / {password}.", provider.issuer());
    }
    loop {
        if let Some(signal) = wait_for_signal(signals, Duration::from_secs(1)) {
            eprintln!("\nsignal {signal}: stopping Envoy, sekisho-authz and the demo server");
            break;
        }
        stack.check_alive()?;
        if let Some(status) = provider.as_mut().and_then(OidcProvider::exited) {
            anyhow::bail!(
                "the OIDC provider exited ({status})\n{}",
                provider.as_ref().map(OidcProvider::log).unwrap_or_default()
            );
        }
    }
    drop(stack);
    drop(provider);
    eprintln!("stopped");
    Ok(())
}

/// `stack.env`: what the `sekisho-authz` CLI needs to act on this stack.
/// Owner-only: it holds the admin token.
fn write_env_file(stack: &Stack) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = stack.data_dir().join("stack.env");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for (name, value) in stack.authz_cli_env() {
        // Single quotes: values are paths, URLs and tokens, none with a quote.
        writeln!(file, "{name}='{value}'")?;
    }
    Ok(path)
}

fn walkthrough(stack: &Stack, env_file: &std::path::Path) -> String {
    let base = stack.base_url();
    let authz = xtask::workspace::authz_binary();
    format!(
        r#"
Sekisho is up.
  MCP endpoints     {base}/mcp/demo   {base}/mcp/other
  discovery         {base}/.well-known/oauth-protected-resource/mcp/demo
                    {base}/.well-known/oauth-authorization-server
  Envoy admin       {admin}/stats?filter=sekisho
  sekisho-authz     {authz_url} (direct: health, admin API)
  logs              {logs}

Try it from another shell:
{trust}
  set -a; . {env_file}; set +a
  MCP={base}/mcp/demo
  H=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
  INIT='{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"curl","version":"0"}}}}}}'

  # No token: 401 and a WWW-Authenticate header pointing at the metadata.
  curl -si "$MCP" "${{H[@]}}" -d "$INIT"

  # A token from the CLI, then a session and tools/list.
  TOKEN=$({authz} token mint --instance demo --scope "mcp:read" --sub alice)
  SID=$(curl -s -D - -o /dev/null "$MCP" "${{H[@]}}" -H "authorization: Bearer $TOKEN" -d "$INIT" \
        | awk -F': ' 'tolower($1)=="mcp-session-id" {{print $2}}' | tr -d '\r')
  curl -s "$MCP" "${{H[@]}}" -H "authorization: Bearer $TOKEN" -H "mcp-session-id: $SID" \
       -d '{{"jsonrpc":"2.0","method":"notifications/initialized"}}'
  curl -s "$MCP" "${{H[@]}}" -H "authorization: Bearer $TOKEN" -H "mcp-session-id: $SID" \
       -d '{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}'

  # tools/call needs mcp:write: this one is refused with 403 insufficient_scope.
  curl -si "$MCP" "${{H[@]}}" -H "authorization: Bearer $TOKEN" -H "mcp-session-id: $SID" \
       -d '{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}'

Ctrl-C stops everything."#,
        admin = stack.envoy_admin_url(),
        authz_url = stack.authz_url(),
        logs = stack.log_dir().display(),
        env_file = env_file.display(),
        authz = authz.display(),
        trust = match stack.ca_certificate() {
            Some(ca) => format!("\n  export CURL_CA_BUNDLE={}   # TLS: curl trusts the stack's CA\n", ca.display()),
            None => String::new(),
        },
    )
}

fn block_termination_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// The blocked termination signal that arrived within `timeout`, if any.
fn wait_for_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let timeout = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: 0 };
    // SAFETY: `set` was initialised by block_termination_signals; a null
    // siginfo pointer is allowed.
    let signal = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
    (signal > 0).then_some(signal)
}
