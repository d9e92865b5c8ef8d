//! Faults (SPEC R2), each with what keeps working and proof that nothing was
//! lost or half-written:
//! - PostgreSQL stopped and restarted under load: the service answers 503
//!   `temporarily_unavailable`, never 500; JWT and API key traffic through
//!   Envoy keeps flowing; the service recovers by itself; every token issued
//!   has its audit row.
//! - `kill -9` of the service while codes are redeemed and refresh tokens
//!   rotated: no code both redeemed and redeemable, no refresh token both
//!   rotated and usable, no issued token without its audit row.
//! - The JWKS and policy endpoint failing or answering garbage: the filter
//!   keeps its last good keys and counts the failures.
//! - Envoy restarted: the filter loads its state again, answering 503 with
//!   `Retry-After` (never 500) until it has.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::blocking::Client;
use sekisho_e2e::postgres_cluster::PostgresCluster;
use sekisho_e2e::{Instance, Stack, StackOptions, mcp, secret_scan};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use xtask::envoy_config::McpRateLimit;

const DEMO: &str = "/mcp/demo";
const SCOPE: &str = "mcp:read mcp:write";
const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// The load here is far beyond any sane rate limit, on purpose: the limits
/// (tested elsewhere) must not stand between the fault and what it shows.
fn unlimited(mut options: StackOptions) -> StackOptions {
    options.authz_env.push(("SEKISHO_RATE_LIMIT".into(), "off".into()));
    options.mcp_rate_limit = McpRateLimit { requests: 1_000_000, window_seconds: 1, ..McpRateLimit::default() };
    options
}

/// An answer, or `None` when the connection failed before one arrived.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    retry_after: bool,
    body: Value,
}

fn send(request: reqwest::blocking::RequestBuilder) -> Option<Answer> {
    let response = request.send().ok()?;
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    let text = response.text().ok()?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    secret_scan::register_json(&body);
    Some(Answer { status, retry_after, body })
}

fn client_credentials(http: &Client, base: &str, id: &str, secret: &str) -> Option<Answer> {
    let resource = format!("{base}{DEMO}");
    let form = [("grant_type", "client_credentials"), ("resource", resource.as_str())];
    send(http.post(format!("{base}/oauth/token")).basic_auth(id, Some(secret)).form(&form))
}

fn operator_client(stack: &Stack) -> (String, String) {
    let args = ["clients", "register", "--name", "load", "--confidential", "--grant-type", "client_credentials"];
    let out = stack.authz_cli(&[&args[..], &["--scope", SCOPE, "--json"]].concat()).expect("clients register");
    let registered: Value = serde_json::from_str(&out).expect("JSON");
    (registered["client_id"].as_str().unwrap().to_owned(), registered["client_secret"].as_str().unwrap().to_owned())
}

fn jti_of(access_token: &str) -> String {
    let payload = access_token.split('.').nth(1).expect("a JWS");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON");
    claims["jti"].as_str().expect("jti").to_owned()
}

/// The `jti`s of the `token.issued` audit rows, read straight from the database.
fn audited_jtis(pg: &PostgresCluster, database: &str) -> HashSet<String> {
    let rows = pg.query(database, "SELECT details FROM audit_events WHERE event = 'token.issued'").expect("audit rows");
    rows.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON details")["jti"].as_str().expect("jti").to_owned())
        .collect()
}

fn count(pg: &PostgresCluster, database: &str, sql: &str) -> i64 {
    pg.query(database, sql).expect("query").trim().parse().expect("a count")
}

/// The sum of Envoy counters whose name ends with `name` (all workers' VMs).
fn counter(stack: &Stack, name: &str) -> u64 {
    let stats = stack.envoy_stats().expect("Envoy stats");
    stats
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(n, _)| n.ends_with(name))
        .filter_map(|(_, v)| v.trim().parse::<u64>().ok())
        .sum()
}

/// An MCP answer's status, and whether it carried `Retry-After`.
type McpStatus = (u16, bool);

fn mcp_status(stack: &Stack, headers: &[(&str, &str)]) -> Option<McpStatus> {
    let response = stack.mcp_post_with(DEMO, headers, &mcp::initialize_request(1)).ok()?;
    Some((response.status, response.header("retry-after").is_some()))
}

#[test]
fn postgres_stopped_and_restarted_under_load_answers_503_recovers_and_loses_no_audit_row() {
    let mut pg = PostgresCluster::start().expect("a private PostgreSQL server");
    let url = pg.create_database("sekisho").unwrap();
    let options = StackOptions {
        database_url: Some(url),
        instances: vec![Instance::new("demo", "both")],
        ..StackOptions::default()
    };
    let stack = Stack::start(unlimited(options)).expect("the stack starts");
    let (id, secret) = operator_client(&stack);
    let jwt = format!("Bearer {}", stack.mint_token("demo", SCOPE, "alice").unwrap());
    let create_key = ["api-keys", "create", "--name", "load", "--instance", "demo", "--scope", SCOPE];
    let api_key = stack.authz_cli(&create_key).unwrap().trim().to_owned();

    let stop = AtomicBool::new(false);
    let tokens: Mutex<Vec<(Instant, Option<Answer>)>> = Mutex::new(Vec::new());
    let mcp: Mutex<Vec<(&str, Option<McpStatus>)>> = Mutex::new(Vec::new());
    let (down, up, recovered) = thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let answer = client_credentials(stack.http(), stack.base_url(), &id, &secret);
                tokens.lock().unwrap().push((Instant::now(), answer));
            }
        });
        for (kind, header) in [("jwt", ("authorization", jwt.as_str())), ("api_key", ("x-api-key", api_key.as_str()))] {
            let (stop, mcp, stack) = (&stop, &mcp, &stack);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let status = mcp_status(stack, &[header]);
                    mcp.lock().unwrap().push((kind, status));
                    thread::sleep(Duration::from_millis(20));
                }
            });
        }
        thread::sleep(Duration::from_secs(3));
        let down = Instant::now();
        pg.stop();
        thread::sleep(Duration::from_secs(6));
        let health = stack.http().get(format!("{}/health", stack.authz_url())).send().expect("health answers");
        assert_eq!(health.status().as_u16(), 503, "/health with the database down");
        let up = Instant::now();
        pg.start_server().expect("PostgreSQL starts again");
        let recovered = loop {
            let answer = client_credentials(stack.http(), stack.base_url(), &id, &secret);
            let ok = answer.as_ref().is_some_and(|a| a.status == 200);
            tokens.lock().unwrap().push((Instant::now(), answer.clone()));
            if ok {
                break up.elapsed();
            }
            assert!(up.elapsed() < Duration::from_secs(30), "no recovery 30 s after the restart: {answer:?}");
            thread::sleep(Duration::from_millis(100));
        };
        thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        (down, up, recovered)
    });

    let tokens = tokens.into_inner().unwrap();
    let refused: Vec<&Answer> = tokens.iter().filter_map(|(_, a)| a.as_ref()).filter(|a| a.status != 200).collect();
    for answer in &refused {
        assert_eq!(answer.status, 503, "a database fault is 503, never anything else: {answer:?}");
        assert_eq!(answer.body["error"], "temporarily_unavailable", "{answer:?}");
        assert!(answer.retry_after, "503 comes with Retry-After: {answer:?}");
    }
    let while_down = tokens.iter().filter(|(at, _)| *at > down + Duration::from_secs(1) && *at < up).count();
    assert!(!refused.is_empty() && while_down > 0, "the load reached the service while the database was down");
    // One thread sends the token requests one after another, so the gap between
    // two answers is one request's time: with the database away it waits for
    // the pool once (5 s) and is answered, never for a second wait in the audit
    // journal.
    let outage: Vec<Instant> = tokens.iter().map(|(at, _)| *at).filter(|at| *at > down && *at < up).collect();
    let longest = outage.windows(2).map(|w| w[1].duration_since(w[0])).max().unwrap_or_default();
    assert!(longest < Duration::from_secs(8), "a token request took {longest:?} while the database was down");
    let issued: Vec<String> = tokens
        .iter()
        .filter_map(|(_, a)| a.as_ref())
        .filter(|a| a.status == 200)
        .map(|a| jti_of(a.body["access_token"].as_str().expect("access_token")))
        .collect();
    let lost = tokens.iter().filter(|(_, a)| a.is_none()).count();
    assert!(tokens.iter().any(|(at, a)| *at > up && a.as_ref().is_some_and(|a| a.status == 200)), "recovered");

    let mcp = mcp.into_inner().unwrap();
    for kind in ["jwt", "api_key"] {
        let statuses: Vec<Option<McpStatus>> = mcp.iter().filter(|(k, _)| *k == kind).map(|(_, s)| *s).collect();
        assert!(statuses.len() > 50, "{kind}: too little traffic ({})", statuses.len());
        assert!(
            statuses.iter().all(|s| matches!(s, Some((200, _)))),
            "{kind} through Envoy kept working: {statuses:?}"
        );
    }

    let audited = audited_jtis(&pg, "sekisho");
    let missing: Vec<&String> = issued.iter().filter(|jti| !audited.contains(*jti)).collect();
    assert!(missing.is_empty(), "issued tokens without their audit row: {missing:?}");
    let rows = usize::try_from(count(
        &pg,
        "sekisho",
        &format!("SELECT COUNT(*) FROM audit_events WHERE event = 'token.issued' AND client_id = '{id}'"),
    ))
    .unwrap();
    assert!(
        rows >= issued.len() && rows <= issued.len() + lost,
        "audit rows ({rows}) are the tokens issued ({}), plus at most the answers lost ({lost})",
        issued.len()
    );
    eprintln!(
        "database fault: {} token requests ({} issued, {} refused with 503, {lost} without answer), \
         recovered {recovered:?} after the restart, {} MCP requests all 200",
        tokens.len(),
        issued.len(),
        refused.len(),
        mcp.len()
    );
}

/// A public client's registration, and codes from the development login.
struct CodeClient {
    client_id: String,
}

impl CodeClient {
    fn register(stack: &Stack) -> CodeClient {
        let body = json!({
            "redirect_uris": [CALLBACK],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "crash test",
        });
        let answer =
            send(stack.http().post(format!("{}/oauth/register", stack.base_url())).json(&body)).expect("registers");
        assert_eq!(answer.status, 201, "{answer:?}");
        CodeClient { client_id: answer.body["client_id"].as_str().unwrap().to_owned() }
    }

    /// A fresh code and its PKCE verifier (development login, automatic consent).
    fn code(&self, stack: &Stack) -> (String, String) {
        let verifier = URL_SAFE_NO_PAD.encode(rand_bytes());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let resource = format!("{}{DEMO}", stack.base_url());
        let query: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", CALLBACK),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("resource", &resource),
            ("scope", SCOPE),
        ];
        let url = reqwest::Url::parse_with_params(&format!("{}/oauth/authorize", stack.base_url()), &query).unwrap();
        let response = stack.http().get(url).send().expect("authorize");
        assert_eq!(response.status().as_u16(), 302);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let code = url_param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"));
        secret_scan::register("code", &code);
        (code, verifier)
    }

    fn redeem(&self, stack: &Stack, code: &str, verifier: &str) -> Option<Answer> {
        let resource = format!("{}{DEMO}", stack.base_url());
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", CALLBACK),
            ("resource", &resource),
            ("client_id", &self.client_id),
        ];
        send(stack.http().post(format!("{}/oauth/token", stack.base_url())).form(&form))
    }

    fn refresh(&self, stack: &Stack, refresh_token: &str) -> Option<Answer> {
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &self.client_id)];
        send(stack.http().post(format!("{}/oauth/token", stack.base_url())).form(&form))
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).expect("randomness");
    bytes
}

fn url_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

/// One grant attempt of the crash load: what was presented, and what came back.
#[derive(Debug)]
enum Attempt {
    Code { code: String, verifier: String, answer: Option<Answer> },
    Refresh { token: String, answer: Option<Answer> },
}

#[test]
fn kill_9_during_code_redemption_and_refresh_leaves_no_half_written_grant() {
    let pg = PostgresCluster::start().expect("a private PostgreSQL server");
    let url = pg.create_database("sekisho").unwrap();
    let options = StackOptions {
        database_url: Some(url),
        authz_env: vec![("SEKISHO_DEV_LOGIN".into(), "1".into()), ("SEKISHO_DEV_AUTO_CONSENT".into(), "1".into())],
        ..StackOptions::default()
    };
    let mut stack = Stack::start(unlimited(options)).expect("the stack starts");
    let client = CodeClient::register(&stack);
    let codes: Vec<(String, String)> = (0..60).map(|_| client.code(&stack)).collect();
    let refresh_tokens: Vec<String> = (0..30)
        .map(|_| {
            let (code, verifier) = client.code(&stack);
            let answer = client.redeem(&stack, &code, &verifier).expect("redeemed");
            assert_eq!(answer.status, 200, "{answer:?}");
            answer.body["refresh_token"].as_str().expect("refresh_token").to_owned()
        })
        .collect();
    let mut work: Vec<Attempt> = codes
        .into_iter()
        .map(|(code, verifier)| Attempt::Code { code, verifier, answer: None })
        .chain(refresh_tokens.into_iter().map(|token| Attempt::Refresh { token, answer: None }))
        .collect();
    // Interleaved, so the kill finds both kinds in flight.
    work.sort_by_key(|a| match a {
        Attempt::Code { code, .. } => code.clone(),
        Attempt::Refresh { token, .. } => token.clone(),
    });

    let done = AtomicUsize::new(0);
    let total = work.len();
    let work = Mutex::new(work.into_iter().map(Some).collect::<Vec<_>>());
    let finished: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                loop {
                    let next = work.lock().unwrap().iter_mut().find_map(Option::take);
                    let Some(attempt) = next else { break };
                    let attempt = match attempt {
                        Attempt::Code { code, verifier, .. } => {
                            let answer = client.redeem(&stack, &code, &verifier);
                            Attempt::Code { code, verifier, answer }
                        }
                        Attempt::Refresh { token, .. } => {
                            let answer = client.refresh(&stack, &token);
                            Attempt::Refresh { token, answer }
                        }
                    };
                    finished.lock().unwrap().push(attempt);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Kill once a third is done: requests are in flight on every thread.
        while done.load(Ordering::Relaxed) < total / 3 {
            thread::sleep(Duration::from_millis(1));
        }
        // The threads borrow `stack`, so the kill goes by process id; reaped below.
        kill_9(&stack);
    });
    stack.kill_authz().expect("reaped");
    stack.start_authz().expect("the service starts again on the same database");

    let attempts = finished.into_inner().unwrap();
    let ok = |a: &Option<Answer>| a.as_ref().is_some_and(|a| a.status == 200);
    let before_kill = attempts
        .iter()
        .filter(|a| matches!(a, Attempt::Code { answer, .. } | Attempt::Refresh { answer, .. } if ok(answer)))
        .count();
    let failed = total - before_kill;
    assert!(before_kill > 0 && failed > 0, "the kill landed mid-load: {before_kill} succeeded, {failed} did not");

    let redeemed_before =
        count(&pg, "sekisho", "SELECT COUNT(*) FROM authorization_codes WHERE redeemed_at IS NOT NULL");
    let rotated_before = count(&pg, "sekisho", "SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at IS NOT NULL");
    let mut issued = Vec::new();
    let (mut codes_retried_ok, mut refreshes_retried_ok) = (0, 0);
    for attempt in &attempts {
        match attempt {
            Attempt::Code { code, verifier, answer } => {
                let again = client.redeem(&stack, code, verifier).expect("answered");
                if ok(answer) {
                    issued.push(jti_of(answer.as_ref().unwrap().body["access_token"].as_str().unwrap()));
                    assert_eq!(
                        (again.status, again.body["error"].as_str()),
                        (400, Some("invalid_grant")),
                        "redeemed twice"
                    );
                } else if again.status == 200 {
                    codes_retried_ok += 1;
                    issued.push(jti_of(again.body["access_token"].as_str().unwrap()));
                }
            }
            Attempt::Refresh { token, answer } => {
                let again = client.refresh(&stack, token).expect("answered");
                if ok(answer) {
                    issued.push(jti_of(answer.as_ref().unwrap().body["access_token"].as_str().unwrap()));
                    assert_eq!(again.status, 400, "a rotated refresh token is still usable: {again:?}");
                } else if again.status == 200 {
                    refreshes_retried_ok += 1;
                    issued.push(jti_of(again.body["access_token"].as_str().unwrap()));
                }
            }
        }
    }
    // A retry succeeds only where no redemption or rotation had committed.
    let redeemed_after =
        count(&pg, "sekisho", "SELECT COUNT(*) FROM authorization_codes WHERE redeemed_at IS NOT NULL");
    let rotated_after = count(&pg, "sekisho", "SELECT COUNT(*) FROM refresh_tokens WHERE rotated_at IS NOT NULL");
    assert_eq!(redeemed_after, redeemed_before + codes_retried_ok);
    assert_eq!(rotated_after, rotated_before + refreshes_retried_ok);

    // No partial rows: every redemption and rotation carries what it issued,
    // every family is one unbroken chain, every issued token has its audit row.
    let half_redeemed = "SELECT COUNT(*) FROM authorization_codes WHERE (redeemed_at IS NULL) <> (access_jti IS NULL)";
    assert_eq!(count(&pg, "sekisho", half_redeemed), 0);
    let broken_chains = "SELECT COUNT(*) FROM (SELECT family_id FROM refresh_tokens GROUP BY family_id \
                         HAVING COUNT(*) <> COUNT(rotated_at) + 1) AS broken";
    assert_eq!(count(&pg, "sekisho", broken_chains), 0);
    let audited = audited_jtis(&pg, "sekisho");
    for sql in [
        "SELECT access_jti FROM authorization_codes WHERE access_jti IS NOT NULL",
        "SELECT access_jti FROM refresh_tokens WHERE access_jti IS NOT NULL",
    ] {
        for jti in pg.query("sekisho", sql).unwrap().lines().filter(|l| !l.is_empty()) {
            assert!(audited.contains(jti), "{jti} was stored as issued but has no token.issued audit row");
        }
    }
    for jti in &issued {
        assert!(audited.contains(jti), "{jti} reached the client but has no token.issued audit row");
    }
    eprintln!(
        "kill -9: {total} grants, {before_kill} answered before the kill, {codes_retried_ok} codes and \
         {refreshes_retried_ok} refresh tokens usable after it (never committed), all others refused"
    );
}

fn kill_9(stack: &Stack) {
    let pid = stack.authz_pid().expect("the service runs before the kill");
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Answers every HTTP request on `listener` with the next of a few broken
/// answers: a 500, a JSON document of the wrong shape, bytes that are not JSON.
fn serve_garbage(listener: TcpListener, stop: &AtomicBool, served: &AtomicUsize) {
    const ANSWERS: [(&str, &str); 4] = [
        ("500 Internal Server Error", "oops"),
        ("200 OK", r#"{"keys": "garbage"}"#),
        ("200 OK", "\u{0}\u{1}not json at all"),
        ("200 OK", r#"{"keys":[{"kty":"oct","k":"AAAA","kid":"evil","alg":"HS256"}]}"#),
    ];
    listener.set_nonblocking(true).unwrap();
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut stream, _)) = listener.accept() else {
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        read_request_head(&mut stream);
        let (status, body) = ANSWERS[next % ANSWERS.len()];
        next += 1;
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes());
        served.fetch_add(1, Ordering::Relaxed);
    }
}

fn read_request_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65_536 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
}

#[test]
fn jwks_errors_and_garbage_keep_the_last_good_keys_and_count_the_failures() {
    let options = StackOptions { filter_refresh_seconds: 2, ..StackOptions::default() };
    let mut stack = Stack::start(options).expect("the stack starts");
    let seen = stack.mint_token("demo", SCOPE, "alice").unwrap();
    let unseen = stack.mint_token("demo", SCOPE, "bob").unwrap();
    assert_eq!(stack.mcp_post(DEMO, Some(&seen), &mcp::initialize_request(1)).unwrap().status, 200);
    thread::sleep(Duration::from_millis(2_500));
    let failed_before = counter(&stack, "sekisho.jwks.refresh_failed");

    stack.stop_authz();
    let port = stack.ports().authz;
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the service's port is free again");
    let (stop, served) = (AtomicBool::new(false), AtomicUsize::new(0));
    thread::scope(|scope| {
        scope.spawn(|| serve_garbage(listener, &stop, &served));
        // Several refresh periods of nothing but broken answers.
        thread::sleep(Duration::from_secs(9));
        for token in [&seen, &unseen] {
            let response = stack.mcp_post(DEMO, Some(token), &mcp::initialize_request(1)).unwrap();
            assert_eq!(response.status, 200, "the last good keys still verify: {}", response.body);
        }
        let forged = format!("{}.{}", &unseen[..unseen.rfind('.').unwrap()], URL_SAFE_NO_PAD.encode([0u8; 64]));
        let response = stack.mcp_post(DEMO, Some(&forged), &mcp::initialize_request(1)).unwrap();
        assert_eq!(response.status, 401, "garbage keys were not taken in: {}", response.body);
        stop.store(true, Ordering::Relaxed);
    });
    assert!(served.load(Ordering::Relaxed) >= 3, "the filter kept asking: {}", served.load(Ordering::Relaxed));
    let failed_after = counter(&stack, "sekisho.jwks.refresh_failed");
    assert!(failed_after > failed_before, "refresh_failed moved: {failed_before} → {failed_after}");

    stack.start_authz().expect("the service starts again");
    let ok_before = counter(&stack, "sekisho.jwks.refresh_ok");
    let deadline = Instant::now() + Duration::from_secs(15);
    while counter(&stack, "sekisho.jwks.refresh_ok") == ok_before {
        assert!(Instant::now() < deadline, "no successful refresh after the service came back");
        thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(stack.mcp_post(DEMO, Some(&unseen), &mcp::initialize_request(1)).unwrap().status, 200);
}

#[test]
fn after_an_envoy_restart_the_filter_answers_200_or_503_with_retry_after_until_ready() {
    let mut stack = Stack::start(unlimited(StackOptions::default())).expect("the stack starts");
    let token = stack.mint_token("demo", SCOPE, "alice").unwrap();
    let bearer = format!("Bearer {token}");
    assert_eq!(mcp_status(&stack, &[("authorization", &bearer)]), Some((200, false)));

    stack.stop_envoy();
    stack.start_envoy().expect("Envoy starts again");
    let started = Instant::now();
    let (mut unavailable, mut run) = (0, 0);
    // Fresh connections, so every worker's VM is asked, until a long run of 200s.
    while run < 20 {
        assert!(started.elapsed() < Duration::from_secs(30), "the filter did not recover in 30 s");
        match mcp_status(&stack, &[("authorization", &bearer), ("connection", "close")]) {
            Some((200, _)) => run += 1,
            Some((503, retry_after)) => {
                assert!(retry_after, "503 while loading comes with Retry-After");
                unavailable += 1;
                run = 0;
            }
            other => panic!("after the restart: {other:?} (only 200, or 503 while keys load)"),
        }
    }
    let unknown = mcp_status(&stack, &[("authorization", "Bearer not.a.token"), ("connection", "close")]);
    assert_eq!(unknown.map(|(status, _)| status), Some(401), "refusals work again too");
    eprintln!("Envoy restart: {unavailable} answers 503 while loading, ready after {:?}", started.elapsed());
}
