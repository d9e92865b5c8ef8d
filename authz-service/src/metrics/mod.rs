//! The service's Prometheus metrics (SPEC O3), defined in one place.
//!
//! Handlers record through the typed methods of [`Metrics`]; no metric name or
//! label string appears anywhere else. Every label takes its value from a
//! closed set (route templates, status classes, grant types, RFC error codes,
//! breaker states), so the number of series is bounded whatever clients send.
//! `GET /metrics` (`crate::http::metrics`) renders them in the Prometheus text
//! format; it is internal, like `/internal/*`: Envoy's public listener does
//! not route it.
//!
//! Each [`App`](crate::App) has its own registry, so services opened side by
//! side (tests) do not share counters.

pub mod requests;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sekisho_contract::api_key::Verdict;

use crate::grants::{authorization_code, client_credentials, refresh_token};
use crate::login::oidc::breaker::State as BreakerState;

/// `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Request latency buckets, seconds: token requests take milliseconds, a
/// login start that waits on the identity provider up to its timeout.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// The route label of requests that matched no route (404 fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route template (`/oauth/register/{client_id}`), never the raw path.
    route: String,
    method: &'static str,
    /// `2xx`, `4xx`, …
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    route: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    /// A `rate_limit::Limit` name: `register`, `token`, `token-ip`, …
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    provider: &'static str,
    from: &'static str,
    to: &'static str,
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

/// The registry and every metric in it. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    tokens_issued: Family<GrantLabels, Counter>,
    token_refusals: Family<ErrorLabels, Counter>,
    registrations: Family<OutcomeLabels, Counter>,
    api_key_verifications: Family<OutcomeLabels, Counter>,
    breaker_state: Family<ProviderLabels, Gauge>,
    breaker_transitions: Family<TransitionLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    pool_max: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sekisho_authz");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status class",
            requests.clone(),
        );
        let latency: LatencyFamily = Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register_with_unit(
            "http_request_duration",
            "Time to the response head, by route template and method",
            Unit::Seconds,
            latency.clone(),
        );
        let tokens_issued = Family::<GrantLabels, Counter>::default();
        registry.register("tokens_issued", "Token endpoint successes by grant type", tokens_issued.clone());
        let token_refusals = Family::<ErrorLabels, Counter>::default();
        registry.register("token_refusals", "Token endpoint failures by OAuth error code", token_refusals.clone());
        let registrations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "client_registrations",
            "Dynamic client registrations (RFC 7591) by outcome: registered or refused",
            registrations.clone(),
        );
        let api_key_verifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "api_key_verifications",
            "API key checks asked by the filter, by outcome: valid, unknown, revoked, expired, malformed",
            api_key_verifications.clone(),
        );
        let breaker_state = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "identity_provider_breaker_state",
            "Circuit breaker around the upstream identity provider: 0 closed, 1 half-open, 2 open",
            breaker_state.clone(),
        );
        let breaker_transitions = Family::<TransitionLabels, Counter>::default();
        registry.register(
            "identity_provider_breaker_transitions",
            "State changes of the identity provider's circuit breaker",
            breaker_transitions.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused with 429 by the rate limit that refused them",
            rate_limited.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open database connections (idle and in use)",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register("db_pool_idle_connections", "Idle database connections", pool_idle.clone());
        let pool_max = Gauge::default();
        registry.register("db_pool_max_connections", "The database pool's limit", pool_max.clone());
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                latency,
                tokens_issued,
                token_refusals,
                registrations,
                api_key_verifications,
                breaker_state,
                breaker_transitions,
                rate_limited,
                pool_connections,
                pool_idle,
                pool_max,
            }),
        }
    }

    /// A request refused by the rate limit named `limit` (`rate_limit::Limit::name`).
    pub fn rate_limited(&self, limit: &'static str) {
        self.inner.rate_limited.get_or_create(&LimitLabels { limit }).inc();
    }

    /// One HTTP request answered; `route` is the matched route template.
    pub fn http_request(&self, route: &str, method: &Method, status: StatusCode, elapsed: Duration) {
        let method = method_label(method);
        let labels = RequestLabels { route: route.to_owned(), method, status: status_class(status) };
        self.inner.requests.get_or_create(&labels).inc();
        let labels = LatencyLabels { route: labels.route, method };
        self.inner.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// The token endpoint issued tokens for a grant of `grant_type`.
    pub fn token_issued(&self, grant_type: &str) {
        self.inner.tokens_issued.get_or_create(&GrantLabels { grant_type: grant_label(grant_type) }).inc();
    }

    /// The token endpoint refused (or failed) with this RFC 6749 error code.
    pub fn token_refused(&self, error: &'static str) {
        self.inner.token_refusals.get_or_create(&ErrorLabels { error }).inc();
    }

    /// A dynamic registration ended, `registered` or not.
    pub fn client_registration(&self, registered: bool) {
        let outcome = if registered { "registered" } else { "refused" };
        self.inner.registrations.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The filter asked about an API key and got this verdict.
    pub fn api_key_verification(&self, verdict: &Verdict) {
        let outcome = match verdict {
            Verdict::Valid(_) => "valid",
            Verdict::Invalid(reason) => reason.as_str(),
        };
        self.inner.api_key_verifications.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The breaker of `provider` is in `state` (at start: closed).
    pub fn breaker_state(&self, provider: &'static str, state: BreakerState) {
        self.inner.breaker_state.get_or_create(&ProviderLabels { provider }).set(breaker_value(state));
    }

    /// The breaker of `provider` moved from `from` to `to`.
    pub fn breaker_transition(&self, provider: &'static str, from: BreakerState, to: BreakerState) {
        self.breaker_state(provider, to);
        let labels = TransitionLabels { provider, from: from.as_str(), to: to.as_str() };
        self.inner.breaker_transitions.get_or_create(&labels).inc();
    }

    /// The database pool as it is now (sampled at each scrape).
    pub fn database_pool(&self, connections: u32, idle: usize, max: u32) {
        self.inner.pool_connections.set(i64::from(connections));
        self.inner.pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
        self.inner.pool_max.set(i64::from(max));
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.inner.registry)?;
        Ok(text)
    }
}

/// The gauge value of a breaker state: ordered by how bad it is.
fn breaker_value(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

/// The standard methods by name; anything else (extension methods a client
/// may invent) as `other`.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 7] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::HEAD, "HEAD"),
        (Method::PATCH, "PATCH"),
    ];
    KNOWN.iter().find(|(m, _)| m == method).map_or("other", |(_, name)| name)
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Only the grants we serve; a grant that succeeded is one of them.
fn grant_label(grant_type: &str) -> &'static str {
    [authorization_code::GRANT_TYPE, refresh_token::GRANT_TYPE, client_credentials::GRANT_TYPE]
        .into_iter()
        .find(|g| *g == grant_type)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, line_start: &str) -> Option<String> {
        text.lines().find_map(|l| l.strip_prefix(line_start)).map(|v| v.trim().to_owned())
    }

    #[test]
    fn breaker_states_are_ordered_by_how_bad_they_are() {
        let m = Metrics::new();
        m.breaker_state("auth0", BreakerState::Closed);
        let gauge = "sekisho_authz_identity_provider_breaker_state{provider=\"auth0\"} ";
        assert_eq!(sample(&m.render().unwrap(), gauge).as_deref(), Some("0"));
        m.breaker_transition("auth0", BreakerState::Closed, BreakerState::Open);
        assert_eq!(sample(&m.render().unwrap(), gauge).as_deref(), Some("2"));
        m.breaker_transition("auth0", BreakerState::Open, BreakerState::HalfOpen);
        assert_eq!(sample(&m.render().unwrap(), gauge).as_deref(), Some("1"));
        m.breaker_transition("auth0", BreakerState::HalfOpen, BreakerState::Closed);
        let text = m.render().unwrap();
        assert_eq!(sample(&text, gauge).as_deref(), Some("0"));
        let opened = "sekisho_authz_identity_provider_breaker_transitions_total{provider=\"auth0\",from=\"closed\",to=\"open\"} ";
        assert_eq!(sample(&text, opened).as_deref(), Some("1"));
    }

    #[test]
    fn labels_come_from_closed_sets() {
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(status_class(StatusCode::from_u16(599).unwrap()), "5xx");
        assert_eq!(status_class(StatusCode::NO_CONTENT), "2xx");
        assert_eq!(grant_label("client_credentials"), "client_credentials");
        assert_eq!(grant_label("urn:ietf:params:oauth:grant-type:device_code"), "other");
    }
}
