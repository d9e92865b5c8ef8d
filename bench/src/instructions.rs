//! `--instructions`: what a request costs each listener in instructions,
//! counted by valgrind's callgrind in Envoy's process (V8's generated code
//! included), instead of timed.
//!
//! On a shared virtual machine the time per request of one listener moves by
//! 20–40 % between runs minutes apart, more than most changes to the filter
//! are worth. An instruction count is the same run after run (within about
//! 1 %), so an A/B of two builds, or the floor under a filter, can be read
//! from one run. It is not time: callgrind counts user space only, so the
//! kernel's share of a request (its sockets, the same in every listener) is
//! left out and a counted ratio is wider than the timed one; and not every
//! instruction takes as long (measured: Sekisho's cold path counts fewer
//! than `jwt_authn`'s and takes longer). The timed run stays the measure of
//! the targets; this is the magnifier.
//!
//! Each Envoy runs under `valgrind --tool=callgrind` with instrumentation off.
//! Per listener: warm-up requests (V8 compiles the module lazily, and tiers up
//! what runs often), then instrumentation on for a fixed number of requests on
//! one kept-alive connection, off, and a dump of the counters (which zeroes
//! them). More than about three wasm VMs do not start under valgrind, so the
//! listeners are spread over Envoys of their own, each with a `no_auth`
//! listener, and every ratio is taken within one Envoy.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sekisho_e2e::process::ManagedProcess;
use serde::Serialize;

/// Requests before counting, per listener and path.
pub const WARM_UP: usize = 100;
/// Requests counted, per listener and path.
pub const COUNTED: usize = 300;
/// Under valgrind Envoy runs some 50 times slower, and V8 compiles slower still.
const START_TIMEOUT: Duration = Duration::from_secs(600);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What each request carries.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    None,
    Header(&'a str, &'a str),
    /// A token not sent before, per request: the first [`WARM_UP`] warm up,
    /// the next [`COUNTED`] are counted.
    FreshBearers(&'a [String]),
}

/// One counted run: a listener, a path (`hot`, `cold`), where it listens.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub name: &'a str,
    pub path: &'a str,
    pub port: u16,
    pub mcp_path: &'a str,
    pub credential: Credential<'a>,
}

/// One Envoy: its configuration and the runs counted in it, `no_auth` first.
pub struct Group<'a> {
    pub label: &'a str,
    pub config: String,
    pub runs: Vec<Run<'a>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counted {
    /// The Envoy it was counted in (ratios are taken within one).
    pub envoy: String,
    pub name: String,
    pub path: String,
    pub requests: usize,
    pub instructions_per_request: f64,
}

/// Counts every run of every group, one Envoy at a time.
pub fn count(envoy: &Path, cpu: Option<u32>, work: &Path, groups: &[Group<'_>]) -> Result<Vec<Counted>> {
    let mut counted = vec![];
    for group in groups {
        let dir = work.join(format!("callgrind-{}", group.label));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("envoy.yaml");
        std::fs::write(&config, &group.config)?;
        let mut cmd = crate::pinned(Path::new("valgrind"), cpu);
        cmd.args(["--tool=callgrind", "--smc-check=all-non-file", "--instr-atstart=no"])
            .arg(format!("--callgrind-out-file={}", dir.join("callgrind.out").display()))
            .arg(envoy)
            .arg("-c")
            .arg(&config)
            .args(["--concurrency", "1", "--disable-hot-restart", "--log-level", "warn"]);
        eprintln!("instructions: starting Envoy under callgrind ({})…", group.label);
        let process = ManagedProcess::spawn(&format!("envoy-callgrind-{}", group.label), cmd, &dir)?;
        // Every listener is warmed up before any is counted: measured, the
        // first listener counted right after its own warm-up carried some
        // 7,000 instructions per request of work that was not its own (its
        // Envoy was still settling: the filter fetching its keys, V8
        // compiling), counted again last it had not.
        let mut connections = vec![];
        for run in &group.runs {
            let warm = warm_up(run).with_context(|| format!("warming up {} ({})", run.name, run.path));
            connections.push(warm.with_context(|| process.log_tail(20))?);
        }
        for (run, connection) in group.runs.iter().zip(&mut connections) {
            let per_request = count_run(&process, run, connection, &dir)
                .with_context(|| format!("counting {} ({}): {}", run.name, run.path, process.log_tail(20)))?;
            eprintln!("instructions: {} ({}): {per_request:.0} per request", run.name, run.path);
            counted.push(Counted {
                envoy: group.label.to_owned(),
                name: run.name.to_owned(),
                path: run.path.to_owned(),
                requests: COUNTED,
                instructions_per_request: per_request,
            });
        }
    }
    Ok(counted)
}

/// The `i`th request of `run`.
fn request(run: &Run<'_>, i: usize) -> Vec<u8> {
    match run.credential {
        Credential::None => http_request(run.port, run.mcp_path, None),
        Credential::Header(name, value) => http_request(run.port, run.mcp_path, Some((name, value))),
        Credential::FreshBearers(tokens) => {
            http_request(run.port, run.mcp_path, Some(("Authorization", &format!("Bearer {}", tokens[i]))))
        }
    }
}

/// A connection to the run's listener after [`WARM_UP`] requests on it.
fn warm_up(run: &Run<'_>) -> Result<TcpStream> {
    if let Credential::FreshBearers(tokens) = run.credential
        && tokens.len() < WARM_UP + COUNTED
    {
        bail!("{} fresh tokens needed, {} given", WARM_UP + COUNTED, tokens.len());
    }
    let mut connection = ready(run)?;
    for i in 1..WARM_UP {
        send(&mut connection, &request(run, i))?;
    }
    Ok(connection)
}

/// A connection on which the run's first request got its 200: a filter
/// answers 503 until it has fetched its keys, slowly under valgrind.
fn ready(run: &Run<'_>) -> Result<TcpStream> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let mut connection = connect(run.port)?;
        match send(&mut connection, &request(run, 0)) {
            Ok(()) => return Ok(connection),
            Err(e) if Instant::now() > deadline => return Err(e.context("the listener never answered 200")),
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
}

/// Instructions per request over [`COUNTED`] requests on the warm connection.
fn count_run(envoy: &ManagedProcess, run: &Run<'_>, connection: &mut TcpStream, dir: &Path) -> Result<f64> {
    let label = format!("{}-{}", run.name, run.path);
    callgrind_control(envoy.pid(), &["-i", "on"])?;
    for i in WARM_UP..WARM_UP + COUNTED {
        send(connection, &request(run, i))?;
    }
    callgrind_control(envoy.pid(), &["-i", "off"])?;
    let before: Vec<PathBuf> = dumps(dir)?;
    callgrind_control(envoy.pid(), &[&format!("--dump={label}")])?;
    let dump = dumps(dir)?.into_iter().find(|p| !before.contains(p)).context("callgrind wrote no dump")?;
    let total = total_instructions(&std::fs::read_to_string(&dump)?)
        .with_context(|| format!("no instruction total in {}", dump.display()))?;
    Ok(total as f64 / COUNTED as f64)
}

/// Connects once Envoy's listener accepts (it starts slowly under valgrind).
fn connect(port: u16) -> Result<TcpStream> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) if Instant::now() > deadline => return Err(e).context(format!("port {port} never accepted")),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// The request `wrk` sends in the timed runs, byte for byte in its headers.
fn http_request(port: u16, path: &str, credential: Option<(&str, &str)>) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\n"
    );
    if let Some((name, value)) = credential {
        r.push_str(&format!("{name}: {value}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n{BODY}", BODY.len()));
    r.into_bytes()
}

/// Sends one request on the kept connection and reads the whole answer; the
/// run fails on anything but 200 or on a closed connection.
fn send(connection: &mut TcpStream, request: &[u8]) -> Result<()> {
    connection.write_all(request)?;
    let mut reader = BufReader::new(&mut *connection);
    let mut status = String::new();
    reader.read_line(&mut status)?;
    if status.is_empty() {
        bail!("Envoy closed the connection");
    }
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().context("content-length")?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    // The answer is read exactly to its end, so nothing of it stays buffered.
    if reader.buffer().is_empty() && status.split_whitespace().nth(1) == Some("200") {
        return Ok(());
    }
    bail!("answer: {} {}", status.trim_end(), String::from_utf8_lossy(&body))
}

fn callgrind_control(pid: u32, args: &[&str]) -> Result<()> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .context("running callgrind_control (apt-get install valgrind)")?;
    if !out.status.success() {
        bail!("callgrind_control {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

fn dumps(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![];
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("callgrind.out.")) {
            found.push(path);
        }
    }
    Ok(found)
}

/// The instructions a callgrind dump counted: its `totals:` line, else its
/// `summary:` line (the first event is `Ir`).
fn total_instructions(dump: &str) -> Option<u64> {
    let field = |prefix: &str| {
        dump.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    field("totals:").or_else(|| field("summary:"))
}

/// Each run against `no_auth` in the same Envoy: the throughput ratio the
/// targets are stated in, were time to follow instructions.
pub fn table(counted: &[Counted]) -> String {
    let mut out = format!(
        "\ninstructions per request (callgrind, {COUNTED} requests after {WARM_UP}, one kept connection):\n\n\
         {:<10} {:<18} {:<6} {:>14} {:>14} {:>16}\n",
        "envoy", "listener", "path", "instructions", "over no_auth", "no_auth / this"
    );
    for c in counted {
        let base =
            counted.iter().find(|b| b.envoy == c.envoy && b.name == "no_auth").map(|b| b.instructions_per_request);
        let (over, ratio) = match base {
            Some(b) => {
                (format!("{:+.0}", c.instructions_per_request - b), format!("{:.3}", b / c.instructions_per_request))
            }
            None => ("-".to_owned(), "-".to_owned()),
        };
        out.push_str(&format!(
            "{:<10} {:<18} {:<6} {:>14.0} {:>14} {:>16}\n",
            c.envoy, c.name, c.path, c.instructions_per_request, over, ratio
        ));
    }
    let find = |name: &str, path: &str| {
        counted
            .iter()
            .find(|c| c.name == name && c.path == path)
            .map(|c| (c.envoy.as_str(), c.instructions_per_request))
    };
    out.push_str("\nratios by instructions (denominator's count / numerator's, same Envoy):\n");
    for (what, a, b) in [
        ("hot: sekisho_jwt / jwt_authn_cache", ("sekisho_jwt", "hot"), ("jwt_authn_cache", "hot")),
        ("cold: sekisho_jwt / jwt_authn (no cache)", ("sekisho_jwt", "cold"), ("jwt_authn", "cold")),
        ("hot: sekisho_jwt / sekisho_baseline", ("sekisho_jwt", "hot"), ("sekisho_baseline", "hot")),
    ] {
        if let (Some((ea, ia)), Some((eb, ib))) = (find(a.0, a.1), find(b.0, b.1))
            && ea == eb
        {
            out.push_str(&format!("  {what:<52} {:>6.3}\n", ib / ia));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_comes_from_the_totals_line_or_else_the_summary() {
        let dump =
            "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 53071\nfn=(1) main\n5 10\ntotals: 53000\n";
        assert_eq!(total_instructions(dump), Some(53000));
        assert_eq!(total_instructions("events: Ir\nsummary: 7\n"), Some(7));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }

    #[test]
    fn the_counted_request_is_the_one_wrk_sends() {
        let r = String::from_utf8(http_request(8080, "/mcp/bench", Some(("Authorization", "Bearer t")))).unwrap();
        assert!(r.starts_with("POST /mcp/bench HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"), "{r}");
        assert!(
            r.contains("\r\nAuthorization: Bearer t\r\n") && r.contains("Accept: application/json, text/event-stream")
        );
        assert!(r.ends_with(&format!("Content-Length: {}\r\n\r\n{BODY}", BODY.len())), "{r}");
    }

    #[test]
    fn each_ratio_is_taken_against_no_auth_in_the_same_envoy() {
        let c = |envoy: &str, name: &str, path: &str, n: f64| Counted {
            envoy: envoy.into(),
            name: name.into(),
            path: path.into(),
            requests: COUNTED,
            instructions_per_request: n,
        };
        let table = table(&[
            c("a", "no_auth", "hot", 100_000.0),
            c("a", "sekisho_jwt", "hot", 125_000.0),
            c("a", "jwt_authn_cache", "hot", 110_000.0),
            c("b", "no_auth", "hot", 200_000.0),
            c("b", "wasm_floor", "hot", 250_000.0),
        ]);
        let row = |name: &str| table.lines().find(|l| l.contains(name)).unwrap().to_owned();
        assert!(row("sekisho_jwt").ends_with("+25000            0.800"), "{table}");
        assert!(row("wasm_floor").ends_with("+50000            0.800"), "{table}");
        let ratio = table.lines().find(|l| l.contains("hot: sekisho_jwt / jwt_authn_cache")).unwrap();
        assert!(ratio.trim_end().ends_with("0.880"), "{table}");
        assert!(!table.contains("cold:"), "a ratio needs both sides: {table}");
    }
}
