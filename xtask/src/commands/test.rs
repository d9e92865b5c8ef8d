//! `cargo xtask test`: set up, then run every test suite — each one even when
//! an earlier one failed — and end with a summary. Exits non-zero if set-up or
//! any suite failed.
//!
//! Suites today: `cargo test --workspace` (unit, integration and end-to-end
//! tests; the end-to-end ones start Envoy, the service and the demo server
//! through the `sekisho-e2e` harness, and the real-client tests run the Python
//! and TypeScript SDKs and Chromium, which `setup::clients` installs); every
//! cargo-fuzz target for a bounded time (installing cargo-fuzz); last,
//! the secret scan, which looks for every secret the earlier suites registered
//! in every log and audit dump they captured (`sekisho_e2e::secret_scan`).

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result};
use xtask::process::{cargo, describe};
use xtask::setup::{self, Tools};

use super::fuzz;

/// One suite: a command whose stdout carries libtest's `test result:` lines,
/// or (`single`) a command that is one check, passed when it exits 0.
struct Suite {
    name: &'static str,
    command: Command,
    single: bool,
}

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

struct Outcome {
    name: &'static str,
    succeeded: bool,
    counts: Counts,
}

pub fn run(extra_cargo_test_args: &[String]) -> Result<ExitCode> {
    let tools = match setup::all() {
        Ok(tools) => tools,
        Err(error) => {
            // Still a summary: whoever reads the end of a CI log sees why.
            eprintln!("error: {error:#}");
            let failed = Outcome { name: "set-up", succeeded: false, counts: Counts::default() };
            return Ok(summarize(&[failed]));
        }
    };
    // The secret scan reads what this run's suites leave here, and only that.
    for dir in ["sekisho-secrets", "sekisho-logs"] {
        let dir = xtask::workspace::target_dir().join(dir);
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(e).with_context(|| format!("cannot clear {}", dir.display()));
        }
    }
    let mut outcomes = Vec::new();
    // The real-client tests' tools. If they cannot be installed, every other
    // suite still runs; those tests then fail saying what is missing.
    let clients = match setup::clients() {
        Ok(clients) => Some(clients),
        Err(error) => {
            eprintln!("error: {error:#}");
            outcomes.push(Outcome {
                name: "set-up (client SDKs, browser)",
                succeeded: false,
                counts: Counts::default(),
            });
            None
        }
    };
    // cargo-fuzz for the fuzz suites; if it cannot be installed they fail.
    if let Err(error) = fuzz::ensure_cargo_fuzz() {
        eprintln!("error: {error:#}");
        outcomes.push(Outcome { name: "set-up (cargo-fuzz)", succeeded: false, counts: Counts::default() });
    }
    for mut suite in suites(&tools, extra_cargo_test_args) {
        for (name, path) in clients.iter().flat_map(|c| c.env()) {
            suite.command.env(name, path);
        }
        outcomes.push(run_suite(suite)?);
    }
    Ok(summarize(&outcomes))
}

fn suites(tools: &Tools, extra_cargo_test_args: &[String]) -> Vec<Suite> {
    let args = if extra_cargo_test_args.first().map(String::as_str) == Some("--") {
        &extra_cargo_test_args[1..]
    } else {
        extra_cargo_test_args
    };
    let mut cargo_test = cargo();
    // --no-fail-fast: one failing crate must not hide the others' results.
    cargo_test.args(["test", "--workspace", "--no-fail-fast"]).args(args);
    for (name, path) in tools.env() {
        cargo_test.env(name, path);
    }
    // Last: it scans what every suite before it captured.
    let mut secret_scan = cargo();
    secret_scan.args(["test", "-p", "sekisho-e2e", "--test", "secret_scan"]);
    let mut suites = vec![Suite { name: "cargo test --workspace", command: cargo_test, single: false }];
    // Each fuzz target for a bounded time (SPEC R3); `cargo xtask fuzz N` runs longer.
    for (target, name) in fuzz::TARGETS.into_iter().zip(FUZZ_SUITE_NAMES) {
        suites.push(Suite { name, command: fuzz::command(target, FUZZ_SECONDS), single: true });
    }
    suites.push(Suite { name: "secret scan (logs and audit dumps)", command: secret_scan, single: false });
    suites
}

/// Seconds per fuzz target in the test run: enough to catch a parser that
/// panics on the shapes the corpus grows into, bounded for CI.
const FUZZ_SECONDS: u32 = 15;
const FUZZ_SUITE_NAMES: [&str; 5] = [
    "fuzz: token (15 s)",
    "fuzz: jsonrpc (15 s)",
    "fuzz: request (15 s)",
    "fuzz: decision (15 s)",
    "fuzz: service_request (15 s)",
];

/// Runs a suite, echoing its stdout while adding up libtest's result lines.
fn run_suite(mut suite: Suite) -> Result<Outcome> {
    eprintln!("==> test: {}", describe(&suite.command));
    let mut child = suite
        .command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(&suite.command)))?;
    let mut counts = Counts::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.context("reading test output")?;
            println!("{line}");
            add_result_line(&line, &mut counts);
        }
    }
    let status = child.wait().context("waiting for the test run")?;
    if suite.single {
        counts = if status.success() { Counts { passed: 1, ..Counts::default() } } else { Counts::default() };
    }
    Ok(Outcome { name: suite.name, succeeded: status.success() && counts.failed == 0, counts })
}

/// Adds `test result: ok. 3 passed; 0 failed; 1 ignored; …` to `counts`.
fn add_result_line(line: &str, counts: &mut Counts) {
    let Some(rest) = line.trim().strip_prefix("test result: ") else {
        return;
    };
    for part in rest.split(['.', ';']) {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match what {
            "passed" => counts.passed += n,
            "failed" => counts.failed += n,
            "ignored" => counts.ignored += n,
            _ => {}
        }
    }
}

fn summarize(outcomes: &[Outcome]) -> ExitCode {
    println!("\n==> summary");
    let mut total = Counts::default();
    for o in outcomes {
        let verdict = if o.succeeded { "ok" } else { "FAILED" };
        let c = &o.counts;
        println!("{verdict:>6}  {}: {} passed, {} failed, {} ignored", o.name, c.passed, c.failed, c.ignored);
        total.passed += c.passed;
        total.failed += c.failed;
        total.ignored += c.ignored;
        if !o.succeeded && c.failed == 0 {
            // A build error or a crash fails the suite without a failing test;
            // the closing line must not read "0 failed" then.
            println!("        ({} failed without a failing test: see its output above)", o.name);
            total.failed += 1;
        }
    }
    println!("summary: {} passed, {} failed, {} skipped", total.passed, total.failed, total.ignored);
    if outcomes.iter().all(|o| o.succeeded) { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libtest_result_lines() {
        let mut c = Counts::default();
        add_result_line(
            "test result: ok. 12 passed; 0 failed; 3 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            &mut c,
        );
        add_result_line("test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out", &mut c);
        add_result_line("running 3 tests", &mut c);
        assert_eq!((c.passed, c.failed, c.ignored), (13, 2, 3));
    }
}
