//! The few HTML pages the service shows — the consent page and error pages —
//! rendered on the server, no script, every untrusted string escaped, and sent
//! with the security headers of SPEC S5.
//!
//! The consent page's CSP adds the client's redirect origin to `form-action`:
//! browsers apply `form-action` to the redirects that follow a form submission,
//! so with `'self'` alone the redirect back to the client after Approve would
//! be blocked.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::App;
use crate::authorize::ConsentPage;
use crate::clients::{Source, redirect_uri};
use crate::error::Error;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1f2328;line-height:1.45}\
h1{font-size:1.35rem}code{background:#f3f4f6;padding:0 .25rem;border-radius:3px;word-break:break-all}\
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem .8rem;border-radius:6px}\
.actions{display:flex;gap:.75rem;margin-top:1.5rem}button{font-size:1rem;padding:.5rem 1.2rem;border-radius:6px;border:1px solid #8c959f;cursor:pointer}\
button.approve{background:#1f883d;color:#fff;border-color:#1f883d}small{color:#59636e}";

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An error the user sees instead of a redirect: the client or redirect URI
/// could not be trusted, or the flow broke. Client mistakes are 400.
pub fn error_page(app: &App, error: &Error) -> Response {
    let status = match error {
        Error::Refused { .. } | Error::Unauthorized { .. } => StatusCode::BAD_REQUEST,
        other => other.status(),
    };
    if let Error::Internal(e) = error {
        tracing::error!(error = format!("{e:#}"), "authorization page failed");
    }
    let description = error.description().unwrap_or("something went wrong on our side");
    let body = format!(
        "<h1>This request cannot be completed</h1>\n<p>{}</p>\n<p><small>Error: <code>{}</code>. \
         Go back to the application and start again.</small></p>",
        escape(description),
        escape(error.code()),
    );
    page(app, status, "Authorization error", &body, None)
}

pub fn consent_page(app: &App, consent: &ConsentPage) -> Response {
    let mut body = String::new();
    body.push_str(&format!(
        "<h1>Allow <strong>{}</strong> to use your MCP servers?</h1>\n",
        escape(&consent.client_name)
    ));
    let who = match consent.source {
        Source::MetadataDocument => "Its identity is described by the document at",
        Source::Dynamic => "It registered itself; its name is its own claim. Client id:",
        Source::Operator => "It was registered by an operator. Client id:",
    };
    body.push_str(&format!("<p><small>{who} <code>{}</code></small></p>\n", escape(&consent.client_id)));
    body.push_str(&format!(
        "<p>After you answer you will be sent to <strong>{}</strong>.</p>\n",
        escape(&consent.redirect_host)
    ));
    if consent.redirect_is_loopback {
        body.push_str(
            "<p class=\"warn\">This address is on your own computer. Any program on it could \
             have registered under this name: approve only if you just started this from an \
             application you trust.</p>\n",
        );
    }
    body.push_str("<p>It asks for access to:</p>\n<ul>\n");
    for (name, resource) in &consent.instances {
        body.push_str(&format!(
            "<li><strong>{}</strong> <small><code>{}</code></small></li>\n",
            escape(name),
            escape(resource)
        ));
    }
    body.push_str("</ul>\n<p>with these permissions:</p>\n<ul>\n");
    for scope in &consent.scopes {
        body.push_str(&format!("<li><code>{}</code> — {}</li>\n", escape(scope), escape(scope_description(scope))));
    }
    if consent.offline_access {
        body.push_str("<li><code>offline_access</code> — keep access after you leave, until you revoke it</li>\n");
    }
    body.push_str("</ul>\n");
    body.push_str(&format!(
        "<form method=\"post\" action=\"/oauth/authorize/consent\">\n\
         <input type=\"hidden\" name=\"request\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <div class=\"actions\">\
         <button class=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></div>\n</form>\n",
        escape(&consent.request_id),
        escape(&consent.csrf)
    ));
    let redirect_source = redirect_uri::csp_source(&consent.redirect_uri);
    page(app, StatusCode::OK, "Authorize access", &body, redirect_source.as_deref())
}

fn scope_description(scope: &str) -> &'static str {
    match scope {
        sekisho_contract::scope::READ => "list and read tools, resources and prompts",
        sekisho_contract::scope::WRITE => "call tools and change state",
        sekisho_contract::scope::ADMIN => "everything, including administrative tools",
        _ => "a permission defined by the server's operator",
    }
}

fn page(app: &App, status: StatusCode, title: &str, body: &str, form_action_extra: Option<&str>) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} — Sekisho</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    );
    let mut response = (status, html).into_response();
    security_headers(app, response.headers_mut(), form_action_extra);
    response
}

/// SPEC S5 headers for pages and for the redirects of the authorization flow.
pub fn security_headers(app: &App, headers: &mut HeaderMap, form_action_extra: Option<&str>) {
    let form_action = match form_action_extra {
        Some(source) => format!("'self' {source}"),
        None => "'self'".to_owned(),
    };
    let csp = format!(
        "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if app.issuer().starts_with("https://") {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&'y")</script>"#),
            "&lt;script&gt;alert(&quot;x&amp;&#39;y&quot;)&lt;/script&gt;"
        );
    }
}
