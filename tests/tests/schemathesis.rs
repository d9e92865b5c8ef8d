//! schemathesis (PyPI, pinned in `tests/clients/python/requirements.txt`)
//! against the running service and the OpenAPI document it serves (SPEC O3,
//! R3): generated requests, valid and invalid, for every documented
//! operation; no answer may be a 5xx, have a status the document does not
//! list for it, or a body that does not match the documented schema.
//!
//! The service runs in a real stack with the development login and an admin
//! token, and schemathesis talks to its own listener (the admin API and the
//! filter's internal endpoints are not routed by Envoy). The admin API runs
//! with the admin token, everything else without it. The budget is bounded
//! (examples per operation and a time limit per run) so the whole test takes
//! under three minutes on two cores; a failure prints schemathesis's report, which
//! includes a curl command that reproduces each finding.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use sekisho_e2e::{Stack, StackOptions};

const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance";
/// Generated cases per operation and phase; with ~40 operations this is what
/// fits the time budget on two cores.
const MAX_EXAMPLES: &str = "30";
/// Seconds per run: fuzzing repeats until the budget is spent, so this is
/// what each of the two runs takes.
const MAX_TIME: &str = "75";
/// Left out of the first run: the admin API (the second run), and the upstream
/// login's callback and unavailable page, which are mounted only when an
/// OpenID provider is configured (this service runs the development login).
const NOT_IN_THE_PUBLIC_RUN: &str = "^/admin/|^/oauth/(callback|login/)";
/// A fixed seed: a failure here reproduces with the same command.
const SEED: &str = "20261128";

fn schemathesis_python() -> std::path::PathBuf {
    let python = sekisho_e2e::clients::python().unwrap();
    let probe =
        Command::new(&python).args(["-c", "import schemathesis"]).output().expect("run the client venv's python");
    assert!(
        probe.status.success(),
        "schemathesis is not installed in {} ({}): run `cargo xtask test` (or `cargo xtask setup`)",
        python.display(),
        String::from_utf8_lossy(&probe.stderr).trim()
    );
    python
}

fn run(python: &Path, stack: &Stack, name: &str, filter: &[&str], headers: &[String]) -> Output {
    let report_dir = stack.data_dir().join(format!("schemathesis-{name}"));
    std::fs::create_dir_all(&report_dir).expect("create the report directory");
    let mut command = Command::new(python);
    // schemathesis keeps its example database in the working directory:
    // the stack's, not the source tree.
    command
        .current_dir(&report_dir)
        .args(["-m", "schemathesis.cli", "run"])
        .arg(format!("{}/openapi.json", stack.authz_url()))
        .args(["--url", &stack.authz_url()])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES, "--max-time", MAX_TIME, "--seed", SEED])
        // One worker: hypothesis's lambda descriptions are not thread-safe
        // ("AST constructor recursion depth mismatch" with two).
        .args(["--workers", "1", "--request-timeout", "10", "--max-redirects", "0"])
        .args(["--suppress-health-check", "all"])
        .args(["--report", "junit"])
        .arg("--report-dir")
        .arg(&report_dir)
        .args(filter)
        .env("NO_COLOR", "1")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy");
    for header in headers {
        command.args(["-H", header]);
    }
    let started = Instant::now();
    let output = command.output().expect("run schemathesis");
    eprintln!("schemathesis ({name}) finished in {:.1?}: {}", started.elapsed(), output.status);
    output
}

fn assert_passed(name: &str, output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "schemathesis ({name}) found problems:\n{stdout}\n--- stderr\n{stderr}");
    // A run that tested nothing would also exit 0.
    assert!(
        !stdout.contains("No operations") && stdout.contains("passed"),
        "schemathesis ({name}) ran no test:\n{stdout}\n--- stderr\n{stderr}"
    );
    eprintln!("{stdout}");
}

#[test]
fn the_service_conforms_to_its_openapi_document() {
    let python = schemathesis_python();
    let options = StackOptions {
        authz_env: vec![
            ("SEKISHO_DEV_LOGIN".to_owned(), "1".to_owned()),
            // Thousands of requests from one address: the point is what
            // each endpoint answers, not the 429 (tested where rate limits are).
            ("SEKISHO_RATE_LIMIT".to_owned(), "off".to_owned()),
        ],
        ..StackOptions::default()
    };
    let mut stack = Stack::start(options).expect("the stack starts");

    let public = run(&python, &stack, "public", &["--exclude-path-regex", NOT_IN_THE_PUBLIC_RUN], &[]);
    let admin = run(
        &python,
        &stack,
        "admin",
        &["--include-path-regex", "^/admin/"],
        &[format!("Authorization: Bearer {}", stack.admin_token())],
    );
    stack.check_alive().expect("every process of the stack is still running");
    assert_passed("public and internal endpoints", &public);
    assert_passed("admin API", &admin);
    // A 429 is a documented answer, but one that tests nothing behind it.
    let metrics = stack.http().get(format!("{}/metrics", stack.authz_url())).send().unwrap().text().unwrap();
    let limited: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("sekisho_authz_rate_limited_total") && !l.ends_with(" 0")).collect();
    assert!(limited.is_empty(), "requests were rate limited, so their operations went untested: {limited:?}");
}
