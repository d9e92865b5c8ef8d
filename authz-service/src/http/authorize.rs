//! The browser side of the authorization endpoint: `GET /oauth/authorize`,
//! `GET /oauth/authorize/continue` (back from an upstream login) and
//! `POST /oauth/authorize/consent` (the consent form). `crate::authorize`
//! decides; this module turns its steps into redirects and pages, and keeps the
//! browser-binding cookie.
//!
//! Errors here are HTML pages, not JSON: a browser is looking.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::App;
use crate::audit::Actor;
use crate::authorize::{self, Step};
use crate::error::Error;
use crate::http::client_ip::ClientIp;
use crate::http::html;
use crate::params::Params;

/// The cookie that binds a pending authorization request to its browser. Its
/// path covers the authorization endpoint and nothing else.
const COOKIE: &str = "sekisho_browser";
const COOKIE_PATH: &str = "/oauth/authorize";

pub fn routes() -> Router<App> {
    Router::new()
        .route("/oauth/authorize", get(start))
        .route("/oauth/authorize/continue", get(resume))
        .route("/oauth/authorize/consent", post(decide))
}

async fn start(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_query(query.as_deref());
    let actor = Actor::user(ip);
    match authorize::start(&app, &params, cookie(&headers), &actor).await {
        Ok((step, new_cookie)) => {
            let mut response = render(&app, step, StatusCode::FOUND);
            if let Some(value) = new_cookie {
                set_cookie(&app, &mut response, &value);
            }
            response
        }
        Err(error) => html::error_page(&app, &error),
    }
}

async fn resume(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::from_query(query.as_deref());
    let actor = Actor::user(ip);
    let step = match params.required("request") {
        Ok(id) => authorize::resume(&app, id, cookie(&headers), &actor).await,
        Err(e) => Err(e),
    };
    match step {
        Ok(step) => render(&app, step, StatusCode::FOUND),
        Err(error) => html::error_page(&app, &error),
    }
}

async fn decide(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let actor = Actor::user(ip);
    let step = match body.map_err(Error::from).and_then(|body| Params::from_body(&headers, &body)) {
        Ok(form) => authorize::decide(&app, &form, cookie(&headers), &actor).await,
        Err(e) => Err(e),
    };
    match step {
        // 303: the browser follows with a GET, not a second POST.
        Ok(step) => render(&app, step, StatusCode::SEE_OTHER),
        Err(error) => html::error_page(&app, &error),
    }
}

fn render(app: &App, step: Step, redirect_status: StatusCode) -> Response {
    match step {
        Step::ToClient(url) | Step::Login(url) => redirect(app, redirect_status, &url),
        Step::Consent(page) => html::consent_page(app, &page),
    }
}

fn redirect(app: &App, status: StatusCode, location: &str) -> Response {
    let Ok(value) = HeaderValue::from_str(location) else {
        return html::error_page(app, &Error::internal(anyhow::anyhow!("redirect location is not a header value")));
    };
    let mut response = status.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, value);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The URL carries the code: never let it leak through a Referer.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The binding cookie's value, if the browser sent one.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn set_cookie(app: &App, response: &mut Response, value: &str) {
    // A session cookie: it outlives no browser session, and nothing but the
    // authorization flow reads it.
    let secure = if app.issuer().starts_with("https://") { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={value}; Path={COOKIE_PATH}; HttpOnly; SameSite=Lax{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
