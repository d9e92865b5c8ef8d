//! Graceful shutdown of the real binary (SPEC O4): SIGTERM in the middle of a
//! burst of client_credentials grants. Every request that got an answer got a
//! 200, every token handed out has its audit row and no audit row lacks its
//! token, the API key usage held in memory is written, the port is closed, and
//! the process exits 0 — on SQLite and PostgreSQL.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestEnv, on_each_backend};
use sekisho_authz::api_keys::{self, ApiKeySpec, Expiry};
use sekisho_authz::audit::Actor;
use sekisho_authz::clients::metadata::{Registrar, RegistrationRequest};
use sekisho_authz::clients::registration;
use sekisho_authz::storage::Db;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const REQUESTS: usize = 400;
const CONCURRENCY: usize = 32;
/// SIGTERM goes out when this many answers have come back.
const SIGNAL_AFTER: usize = 60;
const KEY_CHECKS: i64 = 5;
/// Generous for a debug build on two busy cores; the service's own grace is 20 s.
const EXIT_BOUND: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(env: &TestEnv, port: u16) -> Child {
    let log = File::create(env.dir.path().join("service.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
        .arg("serve")
        .env_clear()
        .envs(env.vars())
        .env("SEKISHO_LISTEN", format!("127.0.0.1:{port}"))
        // Usage is written only at shutdown within this test, so the test sees that write.
        .env("SEKISHO_API_KEY_USAGE_FLUSH_SECS", "300")
        // A burst from one client is the point here, not what the limiter is for.
        .env("SEKISHO_RATE_LIMIT", "off")
        // Structured logs, as a log pipeline reads them.
        .env("SEKISHO_LOG_FORMAT", "json")
        .env("RUST_LOG", "info,sqlx=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary starts")
}

async fn wait_until_healthy(base: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        assert!(child.try_wait().unwrap().is_none(), "the service exited during start-up");
        if let Ok(response) = oauth::http().get(format!("{base}/health")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not become healthy");
}

/// What one token request came back with.
struct Outcome {
    status: Option<u16>,
    jti: Option<String>,
    answered_at: Instant,
}

fn jti_of(body: &Value) -> Option<String> {
    use base64::Engine;
    let token = body["access_token"].as_str()?;
    let payload = token.split('.').nth(1)?;
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims["jti"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_and_writes_what_is_pending() {
    on_each_backend(|env| async move {
        // Set up through the library on the same database.
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo", "auth_mode": "both" })).await;
        let request: RegistrationRequest = serde_json::from_value(
            json!({ "client_name": "batch", "grant_types": ["client_credentials"], "scope": "mcp:read" }),
        )
        .unwrap();
        let machine = registration::register(&t.app, request, Registrar::Operator, &Actor::cli()).await.unwrap();
        let spec = ApiKeySpec {
            name: "nightly".into(),
            instances: vec!["demo".into()],
            scope: "mcp:read".into(),
            expiry: Expiry::Never,
        };
        let key = api_keys::create(&t.app, &spec, &Actor::cli()).await.unwrap();
        t.app.db.close().await;

        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut child = start(&env, port);
        wait_until_healthy(&base, &mut child).await;
        let http = oauth::http();

        // The filter checks the key a few times; the uses wait in memory.
        for _ in 0..KEY_CHECKS {
            let answer = http
                .post(format!("{base}/internal/v1/api-keys/verify"))
                .json(&json!({ "api_key": key.api_key }))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
        }
        let db = Db::connect(&env.database_url, t.app.config.database_kind).await.unwrap();
        let before = api_keys::list(&db).await.unwrap();
        assert_eq!(before[0].use_count, 0, "not written before shutdown (flush every 300 s)");
        db.close().await;

        // The burst.
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::with_capacity(REQUESTS);
        for _ in 0..REQUESTS {
            let (http, base, permits, answered) = (http.clone(), base.clone(), permits.clone(), answered.clone());
            let (id, secret) = (machine.client_id.clone(), machine.client_secret.clone().unwrap());
            tasks.push(tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.unwrap();
                let sent = http
                    .post(format!("{base}/oauth/token"))
                    .basic_auth(id, Some(secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        // A body cut off mid-way would leave a status without a token: kept as such.
                        let body: Value = response.json().await.unwrap_or(Value::Null);
                        Outcome { status: Some(status), jti: jti_of(&body), answered_at: Instant::now() }
                    }
                    Err(_) => Outcome { status: None, jti: None, answered_at: Instant::now() },
                };
                answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                outcome
            }));
        }
        while answered.load(std::sync::atomic::Ordering::SeqCst) < SIGNAL_AFTER {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let signalled_at = Instant::now();
        let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill(1)");
        assert!(kill.success());

        // Once the listener is closed it stays closed.
        let mut refused_at = None;
        let exit = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(signalled_at.elapsed() < EXIT_BOUND, "still running {EXIT_BOUND:?} after SIGTERM");
            match (TcpStream::connect(("127.0.0.1", port)).await, refused_at) {
                (Err(_), None) => refused_at = Some(signalled_at.elapsed()),
                (Ok(_), Some(at)) => panic!("a connection was accepted after one was refused at {at:?}"),
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let stopped_after = signalled_at.elapsed();
        assert_eq!(exit.code(), Some(0), "{}", std::fs::read_to_string(env.dir.path().join("service.log")).unwrap());
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err(), "nothing listens after exit");

        let mut outcomes = Vec::with_capacity(REQUESTS);
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let answered: Vec<&Outcome> = outcomes.iter().filter(|o| o.status.is_some()).collect();
        let statuses: BTreeSet<u16> = answered.iter().filter_map(|o| o.status).collect();
        assert_eq!(statuses, BTreeSet::from([200]), "every request that got an answer got a 200");
        let finished_after_signal = answered.iter().filter(|o| o.answered_at > signalled_at).count();
        assert!(finished_after_signal > 0, "no request was in flight at SIGTERM; the test proves nothing");
        assert!(answered.len() < REQUESTS, "SIGTERM came after the burst; the test proves nothing");
        let handed_out: BTreeSet<String> = answered.iter().map(|o| o.jti.clone().expect("a token")).collect();
        assert_eq!(handed_out.len(), answered.len());

        // Nothing half-written: the audit log has exactly the tokens handed out.
        let t = env.open().await;
        let audited: BTreeSet<String> = sekisho_authz::audit::list(&t.app.db, Some("token.issued"), 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|e| e.details["jti"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(audited, handed_out);
        // The usage held in memory was written on the way out.
        let after = api_keys::list(&t.app.db).await.unwrap();
        assert_eq!(after[0].use_count, KEY_CHECKS);
        assert!(after[0].last_used_at.is_some());

        // The logs: one JSON object per line, telling the story, and no secret.
        let log = std::fs::read_to_string(env.dir.path().join("service.log")).unwrap();
        let messages: Vec<String> = log
            .lines()
            .map(|line| {
                let entry: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
                entry["message"].as_str().unwrap_or_default().to_owned()
            })
            .collect();
        for expected in
            ["sekisho-authz listening", "SIGTERM received; finishing requests in flight", "sekisho-authz stopped"]
        {
            assert!(messages.iter().any(|m| m == expected), "no {expected:?} in {messages:?}");
        }
        for secret in [machine.client_secret.as_deref().unwrap(), key.api_key.as_str(), "eyJ"] {
            assert!(!log.contains(secret), "the log holds a secret");
        }
        eprintln!(
            "{:?}: {} of {REQUESTS} answered (all 200), {finished_after_signal} after SIGTERM; \
             exit 0 after {stopped_after:?}; port refused {refused_at:?} after SIGTERM",
            env.backend,
            answered.len()
        );
    })
    .await;
}
