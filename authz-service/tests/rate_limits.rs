//! Rate limits (SPEC S1, D2): the 429 arrives at the configured count + 1,
//! `Retry-After` is honest, a client's budget is its own, and replicas that
//! share Redis share one budget — or limit on their own when Redis is away.
//!
//! Client addresses are simulated with `X-Forwarded-For` from 127.0.0.1, a
//! trusted proxy by default, exactly as Envoy forwards them.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Backend, TestEnv, on_each_backend, run_on};
use oauth::{Answer, CALLBACK, Server, http, register_python_style, serve};
use reqwest::StatusCode;
use sekisho_authz::crypto::random;
use serde_json::{Value, json};

const REDIS: &str = "127.0.0.1:6379";

fn public_client() -> Value {
    json!({ "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none", "client_name": "rate-limited" })
}

async fn register_from(base: &str, ip: &str) -> Answer {
    let request = http().post(format!("{base}/oauth/register")).header("x-forwarded-for", ip).json(&public_client());
    Answer::of(request.send().await.expect("request")).await
}

async fn revoke_as(server: &Server, client_id: &str, secret: &str) -> Answer {
    let form = [("client_id", client_id), ("client_secret", secret), ("token", "not-a-token")];
    let request = http().post(format!("{}/oauth/revoke", server.base)).form(&form);
    Answer::of(request.send().await.expect("request")).await
}

/// Asserts a 429 and returns its `Retry-After`, in seconds.
fn assert_limited(answer: &Answer, policy: &str) -> u64 {
    answer.assert_error(429, "too_many_requests");
    assert!(answer.json()["error_description"].as_str().is_some_and(|d| !d.is_empty()), "{answer:?}");
    let retry_after: u64 = answer.header("retry-after").parse().expect("Retry-After is whole seconds");
    assert!(retry_after >= 1, "{answer:?}");
    assert!(answer.header("ratelimit-policy").starts_with(&format!("\"{policy}\";q=")), "{answer:?}");
    assert_eq!(answer.header("ratelimit"), format!("\"{policy}\";r=0;t={retry_after}"));
    retry_after
}

async fn clients_in_database(app: &sekisho_authz::App) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM oauth_clients").fetch_one(app.db.pool()).await.expect("count")
}

#[tokio::test]
async fn registration_is_refused_at_the_configured_count_plus_one_per_ip() {
    on_each_backend(|env| async move {
        let t = env.open_with(&[("SEKISHO_RATE_LIMIT_REGISTER", "3/min")]).await;
        let server = serve(&t.app).await;
        for _ in 0..3 {
            assert_eq!(register_from(&server.base, "203.0.113.1").await.status, StatusCode::CREATED);
        }
        let refused = register_from(&server.base, "203.0.113.1").await;
        let retry_after = assert_limited(&refused, "register");
        assert!(retry_after <= 20, "one slot frees after 60 s / 3: {retry_after}");
        assert_eq!(refused.header("ratelimit-policy"), "\"register\";q=3;w=60");
        // Another address has its own budget; the refused request wrote nothing.
        assert_eq!(register_from(&server.base, "203.0.113.2").await.status, StatusCode::CREATED);
        assert_eq!(clients_in_database(&t.app).await, 4);
        // What a client writes left of the proxy's entry does not buy a new budget.
        let spoofed = register_from(&server.base, "198.51.100.7, 203.0.113.1").await;
        assert_limited(&spoofed, "register");
    })
    .await;
}

#[tokio::test]
async fn after_waiting_retry_after_the_next_request_succeeds() {
    run_on(Backend::Sqlite, &|env: TestEnv| async move {
        let t = env.open_with(&[("SEKISHO_RATE_LIMIT_REGISTER", "2/4s")]).await;
        let server = serve(&t.app).await;
        for _ in 0..2 {
            assert_eq!(register_from(&server.base, "203.0.113.9").await.status, StatusCode::CREATED);
        }
        let retry_after = assert_limited(&register_from(&server.base, "203.0.113.9").await, "register");
        assert!(retry_after <= 2, "one slot every 2 s: {retry_after}");
        tokio::time::sleep(Duration::from_secs(retry_after)).await;
        assert_eq!(register_from(&server.base, "203.0.113.9").await.status, StatusCode::CREATED);
        assert_limited(&register_from(&server.base, "203.0.113.9").await, "register");
    })
    .await;
}

#[tokio::test]
async fn a_client_over_its_limit_does_not_punish_another_client_on_the_same_ip() {
    on_each_backend(|env| async move {
        let t = env.open_with(&[("SEKISHO_RATE_LIMIT_TOKEN", "3/min"), ("SEKISHO_RATE_LIMIT_REGISTER", "off")]).await;
        let server = serve(&t.app).await;
        let a = register_python_style(&server).await;
        let b = register_python_style(&server).await;
        let (a_secret, b_secret) = (a.client_secret.clone().unwrap(), b.client_secret.clone().unwrap());
        for _ in 0..3 {
            assert_eq!(revoke_as(&server, &a.client_id, &a_secret).await.status, StatusCode::OK);
        }
        // Someone naming A without its secret is refused as unauthenticated
        // and spends nothing of A's budget (else anyone could starve A).
        for _ in 0..5 {
            revoke_as(&server, &a.client_id, "wrong").await.assert_error(401, "invalid_client");
        }
        assert_limited(&revoke_as(&server, &a.client_id, &a_secret).await, "token");
        // The budget covers the token endpoint too.
        let form = [("grant_type", "client_credentials"), ("client_id", &a.client_id), ("client_secret", &a_secret)];
        let token = http().post(format!("{}/oauth/token", server.base)).form(&form).send().await.unwrap();
        assert_limited(&Answer::of(token).await, "token");
        // B, from the same address, is untouched.
        for _ in 0..3 {
            assert_eq!(revoke_as(&server, &b.client_id, &b_secret).await.status, StatusCode::OK);
        }
    })
    .await;
}

#[tokio::test]
async fn the_in_process_table_stays_bounded_and_the_filter_is_never_throttled() {
    run_on(Backend::Sqlite, &|env: TestEnv| async move {
        let t =
            env.open_with(&[("SEKISHO_RATE_LIMIT_MAX_KEYS", "16"), ("SEKISHO_RATE_LIMIT_DISCOVERY", "1000/min")]).await;
        let server = serve(&t.app).await;
        for i in 0..100 {
            let request =
                http().get(format!("{}/oauth/jwks", server.base)).header("x-forwarded-for", format!("10.9.0.{i}"));
            assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
            assert!(t.app.rate_limits.tracked_keys() <= 16, "{}", t.app.rate_limits.tracked_keys());
        }
        // The filter's fetches (internal) are exempt by default: it fails
        // closed, so throttling it would turn load into an outage.
        for _ in 0..50 {
            let policy = http().get(format!("{}/internal/v1/filter-policy", server.base)).send().await.unwrap();
            assert_eq!(policy.status(), StatusCode::OK);
        }
    })
    .await;
}

/// A `sekisho-authz serve` process of this test, killed on drop.
struct Replica {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Replica {
    fn start(env: &TestEnv, name: &str, extra: &[(&str, &str)]) -> Replica {
        let port = StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let log = env.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"));
        command
            .arg("serve")
            .env_clear()
            .envs(env.vars())
            .env("SEKISHO_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn,sekisho_authz=info")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(file);
        let child = command.spawn().expect("the binary starts");
        let mut replica = Replica { child, base: format!("http://127.0.0.1:{port}"), log };
        replica.wait_healthy();
        replica
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let address: SocketAddr = self.base.trim_start_matches("http://").parse().expect("address");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.base, self.log_text());
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{} did not start listening:\n{}", self.base, self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn random_prefix() -> String {
    let suffix: String = random::bytes::<6>().expect("randomness").iter().map(|b| format!("{b:02x}")).collect();
    format!("sekisho-test:{suffix}:")
}

#[tokio::test]
async fn two_replicas_sharing_redis_share_one_budget() {
    TcpStream::connect_timeout(&REDIS.parse().unwrap(), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("Redis at {REDIS} is unreachable ({e}); this test needs a real Redis there"));
    run_on(Backend::Postgres, &|env: TestEnv| async move {
        let prefix = random_prefix();
        let shared = [
            ("SEKISHO_RATE_LIMIT_REGISTER", "4/min"),
            ("SEKISHO_REDIS_URL", "redis://127.0.0.1:6379"),
            ("SEKISHO_REDIS_PREFIX", prefix.as_str()),
        ];
        let one = Replica::start(&env, "one", &shared);
        let two = Replica::start(&env, "two", &shared);
        for replica in [&one, &two, &one, &two] {
            assert_eq!(register_from(&replica.base, "203.0.113.50").await.status, StatusCode::CREATED);
        }
        // Each replica has seen only two: alone, each would allow two more.
        assert_limited(&register_from(&one.base, "203.0.113.50").await, "register");
        assert_limited(&register_from(&two.base, "203.0.113.50").await, "register");
        assert_eq!(register_from(&two.base, "203.0.113.51").await.status, StatusCode::CREATED);
        for replica in [&one, &two] {
            assert!(!replica.log_text().contains("unreachable"), "{}", replica.log_text());
        }
    })
    .await;
}

#[tokio::test]
async fn with_redis_unreachable_the_service_answers_and_limits_in_process() {
    run_on(Backend::Sqlite, &|env: TestEnv| async move {
        // A port nothing listens on: connections are refused at once.
        let closed = StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let url = format!("redis://127.0.0.1:{closed}");
        let replica = Replica::start(
            &env,
            "alone",
            &[("SEKISHO_RATE_LIMIT_REGISTER", "2/min"), ("SEKISHO_REDIS_URL", url.as_str())],
        );
        for _ in 0..2 {
            assert_eq!(register_from(&replica.base, "203.0.113.60").await.status, StatusCode::CREATED);
        }
        for _ in 0..3 {
            assert_limited(&register_from(&replica.base, "203.0.113.60").await, "register");
        }
        let health = http().get(format!("{}/health", replica.base)).send().await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let log = replica.log_text();
        assert_eq!(log.matches("Redis (SEKISHO_REDIS_URL) is unreachable").count(), 1, "logged once:\n{log}");
        assert!(!log.contains(&url), "the URL is not logged:\n{log}");
    })
    .await;
}
