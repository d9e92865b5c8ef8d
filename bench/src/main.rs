//! `cargo xtask bench`: the filter against Envoy without authentication and
//! against Envoy's native `jwt_authn`, in one Envoy, one run (SPEC P1–P3, P5).
//!
//! Envoy runs with one worker pinned to core 0; `wrk` runs pinned to core 1.
//! Every listener answers with a direct response once the request is whole (so
//! Envoy keeps the connection), so a ratio is the cost of the authentication
//! filter alone. Ratios compare runs of the same process tree
//! minutes apart, never figures from another machine or day.

mod cpu;
mod instructions;
mod memory;
mod report;
mod reuse;
mod service;
mod tokens;
mod wrk;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use sekisho_e2e::Binaries;
use sekisho_e2e::process::{ManagedProcess, clean_command};
use sekisho_filter::config::FilterConfig;

use crate::report::{Report, Row};
use crate::tokens::Signer;
use crate::wrk::{Load, Wrk};

#[derive(Parser)]
#[command(about = "Benchmarks the Sekisho filter against Envoy without auth and Envoy's native jwt_authn")]
struct Args {
    /// Seconds per measured run.
    #[arg(long, default_value_t = 8)]
    seconds: u32,
    /// wrk connections for the throughput runs.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Rounds: every run (throughput and latency) is repeated this many times, the listeners
    /// interleaved (each round starts one further along the list), and the
    /// table gives medians and per-round ratios.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Distinct tokens for the cold path. Warm-up uses the second half and the
    /// measured run the first, so no measured token was seen before; each half
    /// is larger than every cache (10,000), so cycling through it never hits.
    #[arg(long, default_value_t = 40_000)]
    cold_tokens: u64,
    /// Where the JSON report goes.
    #[arg(long, default_value = "target/bench/latest.json")]
    out: PathBuf,
    /// Only one half: `filter` (Envoy listeners) or `service` (token endpoint,
    /// registration and discovery against oidc-provider).
    #[arg(long, value_parser = ["filter", "service"])]
    only: Option<String>,
    /// Another build of the filter (say, the last commit's) in a listener of
    /// its own, `sekisho_baseline`, measured on the hot path in the same
    /// rounds as the current build. Round-to-round noise on a shared machine
    /// is larger than most changes; a ratio within each round is not.
    #[arg(long)]
    baseline_wasm: Option<PathBuf>,
    /// Count instructions per request with valgrind's callgrind instead of
    /// timing the filter listeners (deterministic; slow: Envoy runs under
    /// valgrind). The service half is not run.
    #[arg(long, conflicts_with = "only")]
    instructions: bool,
}

const ADMIN_TOKEN: &str = "bench-admin-token-bench-admin-token-0000";
const TEMPLATE: &str = include_str!("../envoy-bench.yaml.tmpl");
/// In front of every listener's router: the answer waits for the whole request,
/// so Envoy keeps the connection (see the template's header).
const WHOLE_REQUEST: &str = "- name: envoy.filters.http.buffer\n            typed_config: \
    { \"@type\": type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer, max_request_bytes: 65536 }";

struct Ports {
    admin: u16,
    no_auth: u16,
    jwt_authn: u16,
    jwt_authn_cache: u16,
    wasm_floor: u16,
    wasm_rewrite: u16,
    sekisho: u16,
    authz: u16,
    baseline: u16,
}

fn free_ports() -> Result<Ports> {
    let held: Vec<TcpListener> = (0..9).map(|_| TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let p = |i: usize| held[i].local_addr().map(|a| a.port());
    Ok(Ports {
        admin: p(0)?,
        no_auth: p(1)?,
        jwt_authn: p(2)?,
        jwt_authn_cache: p(3)?,
        wasm_floor: p(4)?,
        sekisho: p(5)?,
        authz: p(6)?,
        baseline: p(7)?,
        wasm_rewrite: p(8)?,
    })
}

/// A command pinned to `cpu` when the machine has more than one core.
pub(crate) fn pinned(program: &Path, cpu: Option<u32>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut c = clean_command(Path::new("taskset"));
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        }
        None => clean_command(program),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bins = Binaries::locate()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (server_cpu, load_cpu) = if cores >= 2 { (Some(0), Some(1)) } else { (None, None) };
    let work = std::env::temp_dir().join(format!("sekisho-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let mut report = Report::new(cores, args.seconds, args.connections, args.rounds);
    let started = Instant::now();
    if args.only.as_deref() != Some("service") {
        filter_bench(&args, &bins, (server_cpu, load_cpu), &work, &mut report)?;
    }
    if args.only.as_deref() != Some("filter") && !args.instructions {
        let wrk = Wrk { cpu: load_cpu, seconds: args.seconds, connections: args.connections, work_dir: &work };
        service::ServiceBench { authz: &bins.authz, server_cpu, wrk, work: &work, rounds: args.rounds }
            .run(&mut report)?;
    }
    report.note(format!("measured in {:.0} s", started.elapsed().as_secs_f64()));

    print!("{}", report.table());
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", args.out.display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Envoy's listeners: no auth, the wasm floor, `jwt_authn` with and without
/// its cache, and the Sekisho filter (SPEC P1–P3, P5).
fn filter_bench(
    args: &Args,
    bins: &Binaries,
    (envoy_cpu, load_cpu): (Option<u32>, Option<u32>),
    work: &Path,
    report: &mut Report,
) -> Result<()> {
    let ports = free_ports()?;
    let issuer = format!("http://127.0.0.1:{}", ports.sekisho);
    let audience = format!("{issuer}/mcp/bench");
    let signer = Signer::generate()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64;

    // The service: keys (our signer's), policy, API keys. Idle once the filter has them.
    let service_env = [
        ("PUBLIC_BASE_URL".to_owned(), issuer.clone()),
        ("SEKISHO_LISTEN".to_owned(), format!("127.0.0.1:{}", ports.authz)),
        ("SEKISHO_DATA_DIR".to_owned(), work.join("data").display().to_string()),
        ("SEKISHO_ADMIN_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
        ("JWT_PRIVATE_KEY".to_owned(), signer.private_pem()?),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    let authz_cli = |cli_args: &[&str]| -> Result<String> {
        let mut c = clean_command(&bins.authz);
        c.envs(service_env.iter().map(|(k, v)| (k, v))).args(cli_args);
        let out = c.output().context("running sekisho-authz")?;
        if !out.status.success() {
            bail!("sekisho-authz {}: {}", cli_args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    authz_cli(&["migrate"])?;
    authz_cli(&["instances", "create", "bench", "--auth-mode", "oauth"])?;
    authz_cli(&["instances", "create", "bench-keys", "--auth-mode", "api_key"])?;
    let api_key = authz_cli(&[
        "api-keys",
        "create",
        "--name",
        "bench",
        "--instance",
        "bench-keys",
        "--scope",
        "mcp:read mcp:write",
    ]);
    let mut authz_cmd = pinned(&bins.authz, load_cpu);
    authz_cmd.envs(service_env.iter().map(|(k, v)| (k, v))).arg("serve");
    let _authz = ManagedProcess::spawn("authz", authz_cmd, work)?;
    wait_for(&format!("http://127.0.0.1:{}/health", ports.authz), &[])?;

    let listeners = Listeners { filter: Some(&bins.filter_wasm), baseline: args.baseline_wasm.as_deref() };
    let config = render(&ports, &issuer, &audience, &signer.jwks_json()?, listeners);
    let hot_token = signer.token(&issuer, &audience, now, u64::MAX)?;
    if args.instructions {
        let fresh =
            signer.tokens(&issuer, &audience, now, 0..(instructions::WARM_UP + instructions::COUNTED) as u64)?;
        let bearer = format!("Bearer {hot_token}");
        let hot = instructions::Credential::Header("Authorization", &bearer);
        let key = api_key.as_ref().map_err(|e| anyhow::anyhow!("no API key for the bench: {e:#}"))?;
        let groups = instruction_groups(&ports, &config, hot, key, &fresh, args.baseline_wasm.is_some());
        let counted = instructions::count(&bins.envoy, envoy_cpu, work, &groups)?;
        report.set_instructions(counted);
        return Ok(());
    }
    let config_path = work.join("envoy-bench.yaml");
    std::fs::write(&config_path, &config)?;
    let mut envoy_cmd = pinned(&bins.envoy, envoy_cpu);
    envoy_cmd.arg("-c").arg(&config_path).args(["--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"]);
    let envoy = ManagedProcess::spawn("envoy", envoy_cmd, work)?;

    let bearer = vec![("Authorization", format!("Bearer {hot_token}"))];
    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}{path}");
    wait_for(&url(ports.sekisho, "/mcp/bench"), &bearer)?;
    if args.baseline_wasm.is_some() {
        wait_for(&url(ports.baseline, "/mcp/bench"), &bearer)?;
    }

    eprintln!("signing {} tokens for the cold path…", args.cold_tokens);
    let cold = signer.tokens(&issuer, &audience, now, 0..args.cold_tokens)?;
    let cold_file = work.join("cold-tokens.txt");
    std::fs::write(&cold_file, cold.join("\n"))?;

    let cold_half = (args.cold_tokens / 2) as usize;
    let wrk = Wrk { cpu: load_cpu, seconds: args.seconds, connections: args.connections, work_dir: work };

    // Every Sekisho VM starts the rounds with a full token cache, as a gateway
    // that has served many callers has. Otherwise only the VM that serves the
    // cold runs would carry one, and an A/B of two builds would compare a full
    // cache with an empty one: measured, the same build ran about 10 % slower
    // in the listener that also served the cold runs. The fill tokens are not
    // the cold path's, so no measured cold token is seen before its run.
    let fill_count = FilterConfig::default().cache_entries as u64 + 2_000;
    let fill = signer.tokens(&issuer, &audience, now, args.cold_tokens..args.cold_tokens + fill_count)?;
    let fill_file = work.join("fill-tokens.txt");
    std::fs::write(&fill_file, fill.join("\n"))?;
    let sekisho_ports = [Some(ports.sekisho), args.baseline_wasm.as_ref().map(|_| ports.baseline)];
    for port in sekisho_ports.into_iter().flatten() {
        eprintln!("filling the token cache of the filter on port {port}…");
        let mut sent = 0;
        while sent < fill_count {
            let load = Load::BearerFromFile(&fill_file, sent as usize);
            sent += Wrk { seconds: 2, ..wrk }.run(&url(port, "/mcp/bench"), load, None)?.requests;
        }
    }
    let none: Vec<(&str, String)> = vec![];
    let envoy_pid = envoy.pid();
    let run = |name: &str, path: &str, round: u32, port: u16, mcp_path: &str, load: Load<'_>, c: Option<u32>| {
        let warm = wrk.warm_up(round);
        let target = url(port, mcp_path);
        let warm_load = match load {
            Load::BearerFromFile(file, _) => Load::BearerFromFile(file, cold_half),
            same => same,
        };
        warm.run(&target, warm_load, c)?;
        eprintln!("round {}: measuring {name} ({path})…", round + 1);
        let prefix = stat_prefix(name);
        let before = reuse::Traffic::read(ports.admin, prefix)?;
        let (result, cpu) = wrk.run_measuring(&target, load, c, envoy_pid)?;
        reuse::Traffic::read(ports.admin, prefix)?.check_reuse_since(before, name)?;
        anyhow::Ok(Row::new(name, path, round, c.unwrap_or(wrk.connections), result).with_server_cpu(cpu))
    };

    let api_key_header = match &api_key {
        Ok(key) => Some(vec![("X-API-Key", key.clone())]),
        Err(e) => {
            report.note(format!("sekisho_api_key not measured: {e:#}"));
            None
        }
    };
    let cold_load = Load::BearerFromFile(&cold_file, 0);
    let mut runs: Vec<TimedRun<'_>> = vec![
        ("no_auth", "hot", ports.no_auth, "/mcp/bench", Load::Same(&none), None),
        ("wasm_floor", "hot", ports.wasm_floor, "/mcp/bench", Load::Same(&bearer), None),
        ("wasm_rewrite", "hot", ports.wasm_rewrite, "/mcp/bench", Load::Same(&bearer), None),
        ("jwt_authn", "hot", ports.jwt_authn, "/mcp/bench", Load::Same(&bearer), None),
        ("jwt_authn_cache", "hot", ports.jwt_authn_cache, "/mcp/bench", Load::Same(&bearer), None),
        ("sekisho_jwt", "hot", ports.sekisho, "/mcp/bench", Load::Same(&bearer), None),
        ("jwt_authn", "cold", ports.jwt_authn, "/mcp/bench", cold_load, None),
        ("jwt_authn_cache", "cold", ports.jwt_authn_cache, "/mcp/bench", cold_load, None),
        ("sekisho_jwt", "cold", ports.sekisho, "/mcp/bench", cold_load, None),
        ("no_auth", "latency", ports.no_auth, "/mcp/bench", Load::Same(&none), Some(1)),
        ("wasm_floor", "latency", ports.wasm_floor, "/mcp/bench", Load::Same(&bearer), Some(1)),
        ("jwt_authn_cache", "latency", ports.jwt_authn_cache, "/mcp/bench", Load::Same(&bearer), Some(1)),
        ("sekisho_jwt", "latency", ports.sekisho, "/mcp/bench", Load::Same(&bearer), Some(1)),
    ];
    if let Some(header) = &api_key_header {
        runs.insert(6, ("sekisho_api_key", "hot", ports.sekisho, "/mcp/bench-keys", Load::Same(header), None));
    }
    if args.baseline_wasm.is_some() {
        runs.insert(6, ("sekisho_baseline", "hot", ports.baseline, "/mcp/bench", Load::Same(&bearer), None));
    }
    for round in 0..args.rounds {
        let n = runs.len();
        for i in 0..n {
            let (name, path, port, mcp_path, load, c) = runs[(i + round as usize) % n];
            report.push(run(name, path, round, port, mcp_path, load, c)?);
        }
    }
    report.set_envoy_rss_kib(memory::rss_kib(envoy.pid()).ok());
    drop(envoy);

    eprintln!("measuring Envoy's memory with and without the filter…");
    match memory::per_worker(
        &bins.envoy,
        work,
        |with_filter| {
            let listeners = Listeners { filter: with_filter.then_some(bins.filter_wasm.as_path()), baseline: None };
            render(&ports, &issuer, &audience, &signer.jwks_json().unwrap_or_default(), listeners)
        },
        &url(ports.sekisho, "/mcp/bench"),
        &bearer,
    ) {
        Ok(m) => report.set_memory(m),
        Err(e) => report.note(format!("memory not measured: {e:#}")),
    }
    Ok(())
}

/// One timed run: listener, path, port, MCP path, load, and connections
/// (`None`: `--connections`).
type TimedRun<'a> = (&'a str, &'a str, u16, &'a str, Load<'a>, Option<u32>);

/// The Envoys of `--instructions`: no more than two wasm VMs in each (more do
/// not start under valgrind), and a `no_auth` listener in each, counted first.
fn instruction_groups<'a>(
    ports: &Ports,
    config: &str,
    hot: instructions::Credential<'a>,
    api_key: &'a str,
    fresh: &'a [String],
    baseline: bool,
) -> Vec<instructions::Group<'a>> {
    use instructions::{Credential, Group, Run};
    let run = |name, path, port, mcp_path, credential| Run { name, path, port, mcp_path, credential };
    let mut filters = vec![
        run("no_auth", "hot", ports.no_auth, "/mcp/bench", Credential::None),
        run("jwt_authn", "hot", ports.jwt_authn, "/mcp/bench", hot),
        run("jwt_authn_cache", "hot", ports.jwt_authn_cache, "/mcp/bench", hot),
        run("sekisho_jwt", "hot", ports.sekisho, "/mcp/bench", hot),
        run("sekisho_api_key", "hot", ports.sekisho, "/mcp/bench-keys", Credential::Header("X-API-Key", api_key)),
        run("jwt_authn", "cold", ports.jwt_authn, "/mcp/bench", Credential::FreshBearers(fresh)),
        run("sekisho_jwt", "cold", ports.sekisho, "/mcp/bench", Credential::FreshBearers(fresh)),
    ];
    if baseline {
        filters.insert(4, run("sekisho_baseline", "hot", ports.baseline, "/mcp/bench", hot));
    }
    vec![
        Group { label: "filters", config: dropping(config, &["wasm_floor", "wasm_rewrite"]), runs: filters },
        Group {
            label: "floors",
            config: dropping(config, &["jwt_authn", "jwt_authn_cache", "sekisho", "sekisho_baseline"]),
            runs: vec![
                run("no_auth", "hot", ports.no_auth, "/mcp/bench", Credential::None),
                run("wasm_floor", "hot", ports.wasm_floor, "/mcp/bench", hot),
                run("wasm_rewrite", "hot", ports.wasm_rewrite, "/mcp/bench", hot),
            ],
        },
    ]
}

/// `config` without the listeners named (clusters stay).
fn dropping(config: &str, listeners: &[&str]) -> String {
    let mut out = config.to_owned();
    for name in listeners {
        if let Some((at, block)) = listener_block(&out, name) {
            out.replace_range(at..at + block.len(), "");
        }
    }
    out
}

/// The `stat_prefix` of the listener a run named `name` measures: the
/// listener's own name, except that both Sekisho paths share one listener.
fn stat_prefix(name: &str) -> &str {
    match name {
        "sekisho_jwt" | "sekisho_api_key" => "sekisho",
        other => other,
    }
}

/// Which builds of the Sekisho filter the bench Envoy loads.
#[derive(Clone, Copy)]
struct Listeners<'a> {
    /// The current build, in the `sekisho` listener; `None` leaves the listener out.
    filter: Option<&'a Path>,
    /// Another build, in a copy of that listener named `sekisho_baseline`.
    baseline: Option<&'a Path>,
}

/// The bench Envoy configuration.
fn render(ports: &Ports, issuer: &str, audience: &str, jwks: &str, listeners: Listeners<'_>) -> String {
    let routes = r#"{ name: r, virtual_hosts: [ { name: v, domains: ["*"], routes: [ { match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: '{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}' } } } ] } ] }"#;
    let mut config = TEMPLATE.to_owned();
    // The rewrite floor: the floor's listener again, configured to rewrite.
    if let Some((at, floor)) = listener_block(&config, "wasm_floor") {
        let rewrite = renamed(&floor, "wasm_floor", "wasm_rewrite")
            .replace("${WASM_FLOOR_PORT}", "${WASM_REWRITE_PORT}")
            .replace("${WASM_FLOOR_CONFIG}", "rewrite");
        config.insert_str(at + floor.len(), &rewrite);
    }
    if let Some((at, sekisho)) = listener_block(&config, "sekisho") {
        let baseline = listeners.baseline.map(|_| {
            renamed(&sekisho, "sekisho", "sekisho_baseline")
                .replace("${SEKISHO_PORT}", "${BASELINE_PORT}")
                .replace("${WASM_PATH}", "${BASELINE_WASM_PATH}")
        });
        let kept = if listeners.filter.is_some() { sekisho.clone() } else { String::new() };
        config.replace_range(at..at + sekisho.len(), &(kept + &baseline.unwrap_or_default()));
    }
    let path = |p: Option<&Path>| p.map(|p| p.display().to_string()).unwrap_or_default();
    for (name, value) in [
        ("ROUTES", routes.to_owned()),
        ("ADMIN_PORT", ports.admin.to_string()),
        ("NO_AUTH_PORT", ports.no_auth.to_string()),
        ("JWT_AUTHN_PORT", ports.jwt_authn.to_string()),
        ("JWT_AUTHN_CACHE_PORT", ports.jwt_authn_cache.to_string()),
        ("WASM_FLOOR_PORT", ports.wasm_floor.to_string()),
        ("WASM_REWRITE_PORT", ports.wasm_rewrite.to_string()),
        ("WASM_FLOOR_PATH", xtask::workspace::wasm_floor().display().to_string()),
        ("WASM_FLOOR_CONFIG", String::new()),
        ("SEKISHO_PORT", ports.sekisho.to_string()),
        ("BASELINE_PORT", ports.baseline.to_string()),
        ("BASELINE_WASM_PATH", path(listeners.baseline)),
        ("AUTHZ_PORT", ports.authz.to_string()),
        ("ISSUER", issuer.to_owned()),
        ("AUDIENCE", audience.to_owned()),
        ("JWKS", jwks.to_owned()),
        ("WASM_PATH", path(listeners.filter)),
        ("WHOLE_REQUEST", WHOLE_REQUEST.to_owned()),
    ] {
        config = config.replace(&format!("${{{name}}}"), &value);
    }
    config
}

/// Where the listener `name` starts in `config`, and its text up to the next
/// listener or the clusters.
fn listener_block(config: &str, name: &str) -> Option<(usize, String)> {
    let at = config.find(&format!("\n  - name: {name}\n"))? + 1;
    let rest = &config[at..];
    // Ends where the next line at the listeners' indentation starts.
    let len =
        ["\n  - name: ", "\n  clusters:\n"].iter().filter_map(|end| rest.find(end)).min().map_or(rest.len(), |e| e + 1);
    Some((at, rest[..len].to_owned()))
}

/// A listener block under another name: its listener, stat prefix, plugin,
/// root and VM ids, so the copy gets a VM of its own.
fn renamed(block: &str, from: &str, to: &str) -> String {
    block.replace(&format!(": {from}\n"), &format!(": {to}\n"))
}

/// Polls `url` (POST tools/list) until it answers 200, for up to 30 s.
fn wait_for(url: &str, headers: &[(&str, String)]) -> Result<()> {
    let client = sekisho_e2e::http::client_builder().timeout(Duration::from_secs(2)).build()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < deadline {
        let mut req = if url.ends_with("/health") { client.get(url) } else { client.post(url) };
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        match req.body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).send() {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{url} never answered 200 ({last})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> Ports {
        Ports {
            admin: 1000,
            no_auth: 1001,
            jwt_authn: 1002,
            jwt_authn_cache: 1003,
            wasm_floor: 1004,
            sekisho: 1005,
            authz: 1006,
            baseline: 1007,
            wasm_rewrite: 1008,
        }
    }

    fn render_with(listeners: Listeners<'_>) -> String {
        render(&ports(), "http://127.0.0.1:1005", "http://127.0.0.1:1005/mcp/bench", "{}", listeners)
    }

    #[test]
    fn a_baseline_build_gets_a_listener_of_its_own_beside_the_current_one() {
        let (current, baseline) = (Path::new("/x/current.wasm"), Path::new("/x/baseline.wasm"));
        let config = render_with(Listeners { filter: Some(current), baseline: Some(baseline) });
        assert!(!config.contains("${"), "a placeholder is left: {config}");
        assert!(config.contains("  - name: sekisho\n") && config.contains("  - name: sekisho_baseline\n"));
        assert!(config.contains("port_value: 1005 ") && config.contains("port_value: 1007 "));
        assert!(config.contains("\"/x/current.wasm\"") && config.contains("\"/x/baseline.wasm\""));
        // Separate VMs, so neither build shares a cache or the keys with the other.
        assert!(config.contains("vm_id: sekisho\n") && config.contains("vm_id: sekisho_baseline\n"));
        // The rewrite floor is the floor's listener again, with its own port, VM and configuration.
        let (_, floor) = listener_block(&config, "wasm_floor").unwrap();
        let (_, rewrite) = listener_block(&config, "wasm_rewrite").unwrap();
        assert!(floor.contains("port_value: 1004 ") && floor.contains("value: ''"), "{floor}");
        assert!(rewrite.contains("port_value: 1008 ") && rewrite.contains("vm_id: wasm_rewrite\n"), "{rewrite}");
        assert!(rewrite.contains("value: 'rewrite'") && !rewrite.contains(": wasm_floor\n"), "{rewrite}");
    }

    /// Each listener's answer waits for the whole request, so connections are
    /// kept and a run measures requests; the stat prefix names the listener,
    /// so the reuse check reads that listener's counters.
    #[test]
    fn every_listener_completes_the_request_before_its_router_answers() {
        let baseline = Path::new("/x/baseline.wasm");
        let config = render_with(Listeners { filter: Some(Path::new("/x/current.wasm")), baseline: Some(baseline) });
        let names =
            ["no_auth", "jwt_authn", "jwt_authn_cache", "wasm_floor", "wasm_rewrite", "sekisho", "sekisho_baseline"];
        for name in names {
            let (_, block) = listener_block(&config, name).unwrap_or_else(|| panic!("no listener {name}"));
            let buffer = block.find("extensions.filters.http.buffer.v3.Buffer").unwrap_or_else(|| panic!("{block}"));
            let router = block.find("- name: envoy.filters.http.router").unwrap();
            assert!(buffer < router, "{block}");
            assert_eq!(block.matches("extensions.filters.http.buffer.v3.Buffer").count(), 1, "{block}");
            assert!(block.contains(&format!("stat_prefix: {name}\n")), "{block}");
        }
        assert_eq!(stat_prefix("sekisho_api_key"), "sekisho");
        assert_eq!(stat_prefix("wasm_rewrite"), "wasm_rewrite");
    }

    #[test]
    fn each_envoy_counted_under_valgrind_has_no_auth_and_at_most_two_wasm_vms() {
        let config = render_with(Listeners {
            filter: Some(Path::new("/x/current.wasm")),
            baseline: Some(Path::new("/x/baseline.wasm")),
        });
        let fresh = vec![String::new(); instructions::WARM_UP + instructions::COUNTED];
        let hot = instructions::Credential::Header("Authorization", "Bearer t");
        let groups = instruction_groups(&ports(), &config, hot, "key", &fresh, true);
        let mut counted = vec![];
        for g in &groups {
            assert!(g.config.matches("runtime: envoy.wasm.runtime.v8").count() <= 2, "{}", g.config);
            assert_eq!(g.runs[0].name, "no_auth");
            for run in &g.runs {
                let listener = stat_prefix(run.name);
                assert!(listener_block(&g.config, listener).is_some(), "{} is not in {}", listener, g.label);
                assert!(g.config.contains(&format!("port_value: {} ", run.port)), "{}", run.name);
                counted.push((run.name, run.path));
            }
            // The service's cluster stays: the filter fetches its keys there.
            assert!(g.config.contains("  - name: sekisho_authz\n"));
        }
        for want in [
            ("sekisho_jwt", "hot"),
            ("sekisho_jwt", "cold"),
            ("jwt_authn", "cold"),
            ("jwt_authn_cache", "hot"),
            ("sekisho_api_key", "hot"),
            ("sekisho_baseline", "hot"),
            ("wasm_floor", "hot"),
            ("wasm_rewrite", "hot"),
        ] {
            assert!(counted.contains(&want), "{want:?} is not counted");
        }
    }

    #[test]
    fn without_the_filter_no_sekisho_listener_is_left() {
        let config = render_with(Listeners { filter: None, baseline: None });
        assert!(!config.contains("  - name: sekisho\n") && !config.contains("vm_id: sekisho"), "{config}");
        assert!(config.contains("  - name: wasm_floor\n") && config.contains("  - name: sekisho_authz\n"));
        let with = render_with(Listeners { filter: Some(Path::new("/x/current.wasm")), baseline: None });
        assert!(with.contains("  - name: sekisho\n") && !with.contains("sekisho_baseline"));
    }
}
