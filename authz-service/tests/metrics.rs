//! `GET /metrics` as Prometheus scrapes it: the service on a real listener,
//! driven over HTTP, its output read by a Prometheus text-format parser. Each
//! counter must move by exactly what the test did, on SQLite and PostgreSQL.

mod common;
#[path = "common/oauth.rs"]
mod oauth;

use std::collections::{BTreeMap, HashMap};

use common::on_each_backend;
use oauth::{Server, get, post_form, post_json, serve};
use reqwest::StatusCode;
use sekisho_authz::api_keys::{self, ApiKeySpec, Expiry};
use sekisho_authz::audit::Actor;
use sekisho_authz::clients::metadata::{Registrar, RegistrationRequest};
use sekisho_authz::clients::registration;
use serde_json::json;

/// One sample line: `name{label="value",…} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One scrape, parsed strictly by the Prometheus text format 0.0.4 rules:
/// every line is `# HELP`, `# TYPE` or a sample; names are metric names;
/// label values are quoted with `\\`, `\"` and `\n` escapes; every sample
/// belongs to a family whose `# TYPE` came first (histograms through their
/// `_bucket`, `_sum` and `_count` series).
struct Metrics {
    types: HashMap<String, String>,
    help: HashMap<String, String>,
    samples: Vec<Sample>,
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `label="value",…}` up to and including the closing brace; returns the labels and the rest.
fn parse_labels(mut rest: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !is_metric_name(name) || name.contains(':') {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} repeated"));
        }
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn parse(text: &str) -> Result<Metrics, String> {
    let mut metrics = Metrics { types: HashMap::new(), help: HashMap::new(), samples: Vec::new() };
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if !is_metric_name(name) {
                return Err(format!("bad name in {line:?}"));
            }
            match keyword {
                Some("HELP") => metrics.help.insert(name.to_owned(), rest.to_owned()),
                Some("TYPE") if ["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest) => {
                    metrics.types.insert(name.to_owned(), rest.to_owned())
                }
                _ => return Err(format!("bad comment line {line:?}")),
            };
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| format!("no value in {line:?}"))?;
        let (name, rest) = line.split_at(name_end);
        if !is_metric_name(name) {
            return Err(format!("bad metric name in {line:?}"));
        }
        let (labels, rest) = match rest.strip_prefix('{') {
            Some(rest) => parse_labels(rest).map_err(|e| format!("{e} in {line:?}"))?,
            None => (BTreeMap::new(), rest),
        };
        let value = rest.strip_prefix(' ').ok_or_else(|| format!("no space before the value in {line:?}"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| format!("bad value in {line:?}"))?,
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| metrics.types.get(*base).is_some_and(|t| t == "histogram"))
            .unwrap_or(name);
        if !metrics.types.contains_key(family) {
            return Err(format!("{name} has no # TYPE before it"));
        }
        metrics.samples.push(Sample { name: name.to_owned(), labels, value });
    }
    Ok(metrics)
}

impl Metrics {
    async fn scrape(server: &Server) -> Metrics {
        let answer = get(server, "/metrics", None).await;
        assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        assert_eq!(answer.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
        parse(&answer.text).unwrap_or_else(|e| panic!("not the Prometheus text format: {e}\n{}", answer.text))
    }

    /// The value of the series `name{labels}` (labels given must match, others
    /// may exist); 0 when it has not appeared yet, as Prometheus reads it.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .map(|s| s.value)
            .collect();
        assert!(matching.len() <= 1, "{name}{labels:?} names several series");
        matching.first().copied().unwrap_or(0.0)
    }

    fn is(&self, name: &str, kind: &str) -> bool {
        self.types.get(name).is_some_and(|t| t == kind)
    }
}

#[test]
fn the_test_parser_is_strict() {
    assert!(parse("# TYPE a counter\na_total{x=\"1\"} 1\n").is_err(), "a_total has no TYPE of its own");
    assert!(parse("# TYPE a_total counter\na_total{x=\"1} 1\n").is_err(), "unterminated value");
    assert!(parse("# TYPE a gauge\na{x=\"1\"}1\n").is_err(), "no space");
    assert!(parse("# TYPE a gauge\na{x=\"1\"} one\n").is_err(), "not a number");
    assert!(parse("# TYPE a gauge\na{1x=\"1\"} 1\n").is_err(), "bad label name");
    let m = parse("# TYPE h histogram\nh_bucket{r=\"/a/{id}\",le=\"+Inf\"} 2\nh_count{r=\"/a/{id}\"} 2\n").unwrap();
    assert_eq!(m.value("h_count", &[("r", "/a/{id}")]), 2.0);
}

const ISSUED: &str = "sekisho_authz_tokens_issued_total";
const REFUSED: &str = "sekisho_authz_token_refusals_total";
const REQUESTS: &str = "sekisho_authz_http_requests_total";
const LATENCY_COUNT: &str = "sekisho_authz_http_request_duration_seconds_count";
const REGISTRATIONS: &str = "sekisho_authz_client_registrations_total";
const API_KEYS: &str = "sekisho_authz_api_key_verifications_total";
const BREAKER_MOVES: &str = "sekisho_authz_identity_provider_breaker_transitions_total";

#[tokio::test]
async fn counters_move_by_exactly_what_happened() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        t.create_instance(json!({ "id": "demo", "auth_mode": "both" })).await;
        let server = serve(&t.app).await;
        let request: RegistrationRequest = serde_json::from_value(
            json!({ "client_name": "batch", "grant_types": ["client_credentials"], "scope": "mcp:read" }),
        )
        .unwrap();
        let machine = registration::register(&t.app, request, Registrar::Operator, &Actor::cli()).await.unwrap();
        let secret = machine.client_secret.clone().unwrap();
        let before = Metrics::scrape(&server).await;

        // One client_credentials grant, one with a wrong secret.
        let grant = [("grant_type", "client_credentials")];
        let ok = post_form(&server, "/oauth/token", &grant, Some((&machine.client_id, &secret))).await;
        assert_eq!(ok.status, StatusCode::OK, "{ok:?}");
        let wrong = post_form(&server, "/oauth/token", &grant, Some((&machine.client_id, "not-the-secret"))).await;
        wrong.assert_error(401, "invalid_client");

        // One dynamic registration, one refused.
        let dcr = json!({ "redirect_uris": [oauth::CALLBACK], "token_endpoint_auth_method": "none" });
        assert_eq!(post_json(&server, "/oauth/register", &dcr).await.status, StatusCode::CREATED);
        let bad = json!({ "redirect_uris": ["http://example.com/callback"], "token_endpoint_auth_method": "none" });
        post_json(&server, "/oauth/register", &bad).await.assert_error(400, "invalid_redirect_uri");

        // The filter asks about a valid key and a malformed one.
        let spec = ApiKeySpec {
            name: "nightly".into(),
            instances: vec!["demo".into()],
            scope: "mcp:read".into(),
            expiry: Expiry::Never,
        };
        let key = api_keys::create(&t.app, &spec, &Actor::cli()).await.unwrap().api_key;
        for presented in [key.as_str(), "sek_not-a-key"] {
            let answer = post_json(&server, "/internal/v1/api-keys/verify", &json!({ "api_key": presented })).await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        }

        // A path with an identifier in it, and one that matches nothing.
        let read = get(&server, &format!("/oauth/register/{}", machine.client_id), None).await;
        assert_eq!(read.status, StatusCode::UNAUTHORIZED, "no registration access token: {read:?}");
        assert_eq!(get(&server, "/no/such/endpoint", None).await.status, StatusCode::NOT_FOUND);

        let after = Metrics::scrape(&server).await;
        let moved = |name: &str, labels: &[(&str, &str)]| after.value(name, labels) - before.value(name, labels);

        assert_eq!(moved(ISSUED, &[("grant_type", "client_credentials")]), 1.0);
        assert_eq!(moved(ISSUED, &[("grant_type", "authorization_code")]), 0.0);
        assert_eq!(moved(REFUSED, &[("error", "invalid_client")]), 1.0);
        assert_eq!(moved(REFUSED, &[("error", "invalid_grant")]), 0.0);
        let token = [("route", "/oauth/token"), ("method", "POST")];
        assert_eq!(moved(REQUESTS, &[token[0], token[1], ("status", "2xx")]), 1.0);
        assert_eq!(moved(REQUESTS, &[token[0], token[1], ("status", "4xx")]), 1.0);
        assert_eq!(moved(LATENCY_COUNT, &token), 2.0);
        assert_eq!(moved(REGISTRATIONS, &[("outcome", "registered")]), 1.0);
        assert_eq!(moved(REGISTRATIONS, &[("outcome", "refused")]), 1.0);
        assert_eq!(moved(API_KEYS, &[("outcome", "valid")]), 1.0);
        assert_eq!(moved(API_KEYS, &[("outcome", "malformed")]), 1.0);
        assert_eq!(moved(API_KEYS, &[("outcome", "unknown")]), 0.0);

        // Route templates, not raw paths: the client id is no label value.
        let by_template = [("route", "/oauth/register/{client_id}"), ("method", "GET"), ("status", "4xx")];
        assert_eq!(moved(REQUESTS, &by_template), 1.0);
        assert_eq!(moved(REQUESTS, &[("route", "unmatched"), ("method", "GET"), ("status", "4xx")]), 1.0);
        assert!(after.samples.iter().all(|s| !s.labels.values().any(|v| v.contains(&machine.client_id))));
        assert!(after.samples.iter().all(|s| !s.labels.values().any(|v| v.contains("/no/such"))));

        // The scrape before this one counted itself.
        assert!(after.value(REQUESTS, &[("route", "/metrics"), ("status", "2xx")]) >= 1.0);

        // Types a scraper relies on, and the pool as it is.
        for counter in [ISSUED, REFUSED, REQUESTS, REGISTRATIONS, API_KEYS] {
            assert!(after.is(counter, "counter"), "{counter} is a counter");
            assert!(after.help.contains_key(counter), "{counter} has HELP");
        }
        assert!(after.is("sekisho_authz_http_request_duration_seconds", "histogram"));
        assert!(after.is("sekisho_authz_db_pool_max_connections", "gauge"));
        assert!(after.value("sekisho_authz_db_pool_max_connections", &[]) >= 1.0);
        assert!(after.value("sekisho_authz_db_pool_connections", &[]) >= 1.0);
        let idle = after.value("sekisho_authz_db_pool_idle_connections", &[]);
        assert!(idle <= after.value("sekisho_authz_db_pool_connections", &[]));

        // Counts only: no secret, key or token ever appears.
        let text = get(&server, "/metrics", None).await.text;
        assert!(!text.contains(&secret) && !text.contains(&key));
        assert!(!text.contains(ok.json()["access_token"].as_str().unwrap()));
    })
    .await;
}

#[tokio::test]
async fn without_an_identity_provider_there_is_no_breaker_series() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let server = serve(&t.app).await;
        let m = Metrics::scrape(&server).await;
        assert!(m.samples.iter().all(|s| !s.name.contains("breaker")));
    })
    .await;
}

#[tokio::test]
async fn breaker_transitions_show_in_the_gauge() {
    on_each_backend(|env| async move {
        // A provider that is down: nothing listens on the discard port, so
        // every discovery fetch is refused at once.
        let t = env
            .open_with(&[
                ("SEKISHO_OIDC_ISSUER", "http://127.0.0.1:9"),
                ("SEKISHO_OIDC_CLIENT_ID", "sekisho"),
                ("SEKISHO_OIDC_CLIENT_SECRET", "test-secret"),
                ("SEKISHO_BREAKER_FAILURES", "1"),
                ("SEKISHO_BREAKER_COOLDOWN_SECS", "1"),
            ])
            .await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = oauth::register_public(&server).await;
        let state = r#"sekisho_authz_identity_provider_breaker_state"#;
        let oidc = [("provider", "oidc")];
        let moved = |m: &Metrics, from: &str, to: &str| {
            m.value(BREAKER_MOVES, &[("provider", "oidc"), ("from", from), ("to", to)])
        };
        let m = Metrics::scrape(&server).await;
        assert!(m.is(state, "gauge"));
        assert_eq!(m.value(state, &oidc), 0.0, "closed before any login");

        let login = || async {
            let pkce = oauth::pkce();
            let path = oauth::authorize_path(&oauth::code_request(&client.client_id, &pkce, "mcp:read", "s"));
            let answer = get(&server, &path, None).await;
            assert_eq!(answer.status, StatusCode::FOUND, "{answer:?}");
            assert!(answer.header("location").contains("/oauth/login/unavailable"), "{answer:?}");
        };
        login().await;
        let m = Metrics::scrape(&server).await;
        assert_eq!(m.value(state, &oidc), 2.0, "open after the first failure");
        assert_eq!(moved(&m, "closed", "open"), 1.0);

        // After the cool-down a login is a trial (half-open); it fails, open again.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        login().await;
        let m = Metrics::scrape(&server).await;
        assert_eq!(m.value(state, &oidc), 2.0);
        assert_eq!(moved(&m, "open", "half_open"), 1.0);
        assert_eq!(moved(&m, "half_open", "open"), 1.0);
        assert_eq!(moved(&m, "half_open", "closed"), 0.0);
        // The same transitions as the audit log has.
        let audited = sekisho_authz::audit::list(&t.app.db, None, 100).await.unwrap();
        let breaker_events = audited.iter().filter(|e| e.event.starts_with("breaker.")).count();
        assert_eq!(breaker_events, 3);
    })
    .await;
}
