//! What is limited, and how much: the limits (one per endpoint group and key
//! kind), their rates, and which limit a request falls under.
//!
//! Rates are written `count/window` (`60/min`, `10/1m`, `5/30s`, `1000/h`) or
//! `off`, in one environment variable per limit (`SEKISHO_RATE_LIMIT_TOKEN`,
//! …); `SEKISHO_RATE_LIMIT=off` turns every limit off (benchmarks, fuzzing).

use std::fmt;
use std::time::Duration;

use axum::http::Method;
use sekisho_contract::paths;

/// `count` requests per `window`, as a burst: a quiet client may send all
/// `count` at once, and then one more every `window / count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub window: Duration,
}

impl Rate {
    pub const fn per_minute(count: u32) -> Rate {
        Rate { count, window: Duration::from_secs(60) }
    }

    /// Parses `count/window`; `None` stands for `off`.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (count, window) =
            text.split_once('/').ok_or_else(|| format!("`{text}` is not `count/window` (e.g. 60/min) or `off`"))?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| format!("`{count}` is not a positive number of requests"))?;
        let window = window.trim();
        let window = match window {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => humantime::parse_duration(other).map_err(|_| format!("`{other}` is not a time window"))?,
        };
        if window < Duration::from_secs(1) || window > Duration::from_secs(24 * 3600) {
            return Err("the window must be between 1 second and 24 hours".into());
        }
        Ok(Some(Rate { count, window }))
    }

    /// Time between two requests once the burst is spent.
    pub fn interval(self) -> Duration {
        self.window / self.count
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.window.as_secs())
    }
}

/// One limit: an endpoint group, counted per client IP or per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `POST /oauth/register` and RFC 7592 management, per IP: registration
    /// creates rows and is open to anyone, so it is the strictest.
    Register,
    /// Token, revocation and introspection, per authenticated client.
    Token,
    /// The same endpoints per IP, before the client is authenticated: what
    /// bounds secret guessing and clients that fail to authenticate.
    TokenIp,
    /// The browser flow (`/oauth/authorize*`, login callbacks), per IP.
    Authorize,
    /// Discovery documents, JWKS, `/health` and unknown paths, per IP.
    Discovery,
    /// The admin API, per IP.
    Admin,
    /// `/internal/*` (the Envoy filter's key and policy fetches), per IP.
    Internal,
}

impl Limit {
    pub const ALL: [Limit; 7] = [
        Limit::Register,
        Limit::Token,
        Limit::TokenIp,
        Limit::Authorize,
        Limit::Discovery,
        Limit::Admin,
        Limit::Internal,
    ];

    /// The name in keys, `RateLimit-Policy` and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Register => "register",
            Limit::Token => "token",
            Limit::TokenIp => "token-ip",
            Limit::Authorize => "authorize",
            Limit::Discovery => "discovery",
            Limit::Admin => "admin",
            Limit::Internal => "internal",
        }
    }

    pub fn variable(self) -> &'static str {
        match self {
            Limit::Register => "SEKISHO_RATE_LIMIT_REGISTER",
            Limit::Token => "SEKISHO_RATE_LIMIT_TOKEN",
            Limit::TokenIp => "SEKISHO_RATE_LIMIT_TOKEN_IP",
            Limit::Authorize => "SEKISHO_RATE_LIMIT_AUTHORIZE",
            Limit::Discovery => "SEKISHO_RATE_LIMIT_DISCOVERY",
            Limit::Admin => "SEKISHO_RATE_LIMIT_ADMIN",
            Limit::Internal => "SEKISHO_RATE_LIMIT_INTERNAL",
        }
    }

    /// Strict where a request creates state or tests a secret, generous where
    /// it only reads public documents. `/internal/*` is off: its only caller
    /// is the filter, whose fetches are already bounded by its refresh period
    /// and negative cache, and a throttled fetch would make the filter refuse
    /// valid traffic (it fails closed) — a flood would become an outage.
    pub fn default_rate(self) -> Option<Rate> {
        match self {
            Limit::Register => Some(Rate::per_minute(10)),
            Limit::Token => Some(Rate::per_minute(60)),
            Limit::TokenIp => Some(Rate::per_minute(300)),
            Limit::Authorize => Some(Rate::per_minute(120)),
            Limit::Discovery => Some(Rate::per_minute(600)),
            Limit::Admin => Some(Rate::per_minute(120)),
            Limit::Internal => None,
        }
    }

    /// The per-IP limit of a request. CORS preflights count as discovery:
    /// a browser sends one before each cross-origin call, and they are cheap.
    pub fn for_request(method: &Method, path: &str) -> Limit {
        if method == Method::OPTIONS {
            return Limit::Discovery;
        }
        let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
        if under("/internal") {
            Limit::Internal
        } else if under("/admin") {
            Limit::Admin
        } else if under("/oauth/register") {
            Limit::Register
        } else if ["/oauth/token", "/oauth/revoke", "/oauth/introspect"].contains(&path) {
            Limit::TokenIp
        } else if path == paths::JWKS {
            Limit::Discovery
        } else if under("/oauth") {
            Limit::Authorize
        } else {
            Limit::Discovery
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_the_documented_forms() {
        assert_eq!(Rate::parse("60/min"), Ok(Some(Rate::per_minute(60))));
        assert_eq!(Rate::parse(" 10/1m "), Ok(Some(Rate::per_minute(10))));
        assert_eq!(Rate::parse("5/30s"), Ok(Some(Rate { count: 5, window: Duration::from_secs(30) })));
        assert_eq!(Rate::parse("1000/h"), Ok(Some(Rate { count: 1000, window: Duration::from_secs(3600) })));
        assert_eq!(Rate::parse("OFF"), Ok(None));
        for bad in ["60", "0/min", "-1/min", "x/min", "10/fortnight", "10/100ms", "10/2days"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_fall_under_their_endpoint_group() {
        let of = |m: Method, p: &str| Limit::for_request(&m, p);
        assert_eq!(of(Method::POST, "/oauth/register"), Limit::Register);
        assert_eq!(of(Method::GET, "/oauth/register/abc"), Limit::Register);
        assert_eq!(of(Method::POST, "/oauth/token"), Limit::TokenIp);
        assert_eq!(of(Method::POST, "/oauth/revoke"), Limit::TokenIp);
        assert_eq!(of(Method::POST, "/oauth/introspect"), Limit::TokenIp);
        assert_eq!(of(Method::GET, "/oauth/authorize"), Limit::Authorize);
        assert_eq!(of(Method::GET, "/oauth/callback"), Limit::Authorize);
        assert_eq!(of(Method::GET, "/oauth/jwks"), Limit::Discovery);
        assert_eq!(of(Method::GET, "/.well-known/oauth-authorization-server"), Limit::Discovery);
        assert_eq!(of(Method::GET, "/admin/v1/instances"), Limit::Admin);
        assert_eq!(of(Method::GET, "/internal/v1/filter-policy"), Limit::Internal);
        assert_eq!(of(Method::OPTIONS, "/oauth/token"), Limit::Discovery);
        assert_eq!(of(Method::GET, "/oauth/registerx"), Limit::Authorize);
        assert_eq!(of(Method::GET, "/nowhere"), Limit::Discovery);
    }
}
