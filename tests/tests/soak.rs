//! Soak (SPEC R4): sustained MCP traffic through Envoy and the filter —
//! a JWT and an API key, each on an MCP session — for `SEKISHO_SOAK_SECS`
//! (default 60) seconds. Envoy's resident memory, sampled from /proc, must
//! not grow beyond a bound once warmed up, and every answer must be 2xx.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use sekisho_e2e::{Instance, Stack, StackOptions};
use serde_json::json;
use xtask::envoy_config::McpRateLimit;

const SCOPE: &str = "mcp:read mcp:write";
const DEFAULT_SECS: u64 = 60;
/// Traffic before the baseline sample: caches, V8 heaps and connection pools fill up.
const WARM_UP: Duration = Duration::from_secs(15);
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// What Envoy may still grow after warm-up: allocator noise, not a leak. A
/// leak of even a few hundred bytes per request passes this within the run.
const GROWTH_BOUND_KIB: u64 = 16 * 1024;
const CLIENTS_PER_CREDENTIAL: usize = 4;

#[test]
fn sustained_load_through_envoy_keeps_memory_flat_and_every_answer_2xx() {
    let secs = std::env::var("SEKISHO_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SECS);
    let duration = Duration::from_secs(secs);
    assert!(duration > WARM_UP + SAMPLE_EVERY * 2, "SEKISHO_SOAK_SECS={secs} leaves no time after the warm-up");
    let options = StackOptions {
        instances: vec![Instance::new("demo", "both")],
        // Envoy's per-credential limit would turn sustained load into 429s; soak is about memory and errors.
        mcp_rate_limit: McpRateLimit { requests: 1_000_000, window_seconds: 1, ..McpRateLimit::default() },
        ..StackOptions::default()
    };
    let stack = Stack::start(options).expect("the stack starts");
    let token = stack.mint_token("demo", SCOPE, "soak").unwrap();
    let create_key = ["api-keys", "create", "--name", "soak", "--instance", "demo", "--scope", SCOPE];
    let api_key = stack.authz_cli(&create_key).unwrap().trim().to_owned();
    let bearer = format!("Bearer {token}");
    let credentials = [("authorization", bearer.as_str()), ("x-api-key", api_key.as_str())];

    let (stop, ok, not_ok) = (AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0));
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let started = Instant::now();
    thread::scope(|scope| {
        for credential in credentials.iter().flat_map(|c| std::iter::repeat_n(*c, CLIENTS_PER_CREDENTIAL)) {
            let (stack, stop, ok, not_ok, failures) = (&stack, &stop, &ok, &not_ok, &failures);
            scope.spawn(move || {
                let session = stack.session_with("/mcp/demo", &[credential]).expect("an MCP session");
                while !stop.load(Ordering::Relaxed) {
                    match session.request("tools/list", json!({})) {
                        Ok(response) if (200..300).contains(&response.status) => ok.fetch_add(1, Ordering::Relaxed),
                        Ok(response) => {
                            failures.lock().unwrap().push(format!("{}: {}", response.status, response.body));
                            not_ok.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(e) => {
                            failures.lock().unwrap().push(format!("{e:#}"));
                            not_ok.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            });
        }
        while started.elapsed() < duration {
            thread::sleep(SAMPLE_EVERY);
            samples.push((started.elapsed(), stack.envoy_rss_kib().expect("Envoy's RSS")));
        }
        stop.store(true, Ordering::Relaxed);
    });

    let (ok, not_ok) = (ok.into_inner(), not_ok.into_inner());
    let baseline = samples.iter().find(|(at, _)| *at >= WARM_UP).map(|(_, rss)| *rss).expect("a sample after warm-up");
    let peak_after = samples.iter().filter(|(at, _)| *at >= WARM_UP).map(|(_, rss)| *rss).max().unwrap_or(baseline);
    let shown: Vec<String> = samples.iter().map(|(at, rss)| format!("{}s:{}MiB", at.as_secs(), rss / 1024)).collect();
    eprintln!(
        "soak: {secs} s, {ok} answers 2xx, {not_ok} not, {:.0} req/s; Envoy RSS after warm-up {} KiB, peak {} KiB \
         (+{} KiB); samples {}",
        ok as f64 / duration.as_secs_f64(),
        baseline,
        peak_after,
        peak_after.saturating_sub(baseline),
        shown.join(" ")
    );
    let failures = failures.into_inner().unwrap();
    assert_eq!(not_ok, 0, "answers other than 2xx, first ones: {:?}", &failures[..failures.len().min(5)]);
    assert!(ok > secs * 20, "too little load to mean anything: {ok} answers in {secs} s");
    assert!(
        peak_after <= baseline + GROWTH_BOUND_KIB,
        "Envoy grew {} KiB after warm-up (bound {GROWTH_BOUND_KIB} KiB): {}",
        peak_after - baseline,
        shown.join(" ")
    );
}
