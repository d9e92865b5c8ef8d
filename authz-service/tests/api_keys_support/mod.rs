//! What the API key tests share: creating keys through the admin API and asking
//! the verify endpoint about them, as the filter does.

#![allow(dead_code)] // each test binary uses a different part

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use sekisho_contract::api_key::{self, VerifyResponse};
use sekisho_contract::paths;
use serde_json::{Value, json};

use crate::common::{Reply, TestApp};

/// Creates a key through the admin API; returns the whole 201 body.
pub async fn create_key(t: &TestApp, instances: &[&str], scope: &str) -> Value {
    create_key_with(t, json!({ "name": "test key", "instances": instances, "scope": scope })).await
}

pub async fn create_key_with(t: &TestApp, body: Value) -> Value {
    let reply = t.admin(Method::POST, "/admin/v1/api-keys", Some(body)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{reply:?}");
    reply.body
}

/// `POST /internal/v1/api-keys/verify` with `{"api_key": key}`.
pub async fn verify_raw(t: &TestApp, key: &str) -> Reply {
    let request = Request::post(paths::API_KEY_VERIFY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({ "api_key": key }).to_string()))
        .expect("request");
    t.send(request).await
}

/// The verify answer, read with the contract type the filter uses.
pub async fn verify(t: &TestApp, key: &str) -> VerifyResponse {
    let reply = verify_raw(t, key).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.header("cache-control"), "no-store");
    serde_json::from_value(reply.body).expect("a VerifyResponse")
}

/// A well-formed key that was never issued.
pub fn unissued_key() -> String {
    api_key::generate(getrandom_fill)
}

fn getrandom_fill(buf: &mut [u8]) {
    sekisho_authz::crypto::random::fill(buf).expect("randomness");
}

/// `key` with one character of its random part changed: the checksum no longer matches.
pub fn with_bad_checksum(key: &str) -> String {
    let mut bytes = key.as_bytes().to_vec();
    bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).expect("ASCII")
}

/// The row's `key_hash`, read straight from the database.
pub async fn stored_hash(t: &TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE id = $1")
        .bind(id)
        .fetch_one(t.app.db.pool())
        .await
        .expect("the key is stored")
}

/// Every audit row as text, to search for things that must not be there.
pub async fn audit_text(t: &TestApp) -> String {
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT event, reason, details FROM audit_events ORDER BY id")
            .fetch_all(t.app.db.pool())
            .await
            .expect("audit rows");
    format!("{rows:?}")
}

/// The audit rows of one event, oldest first: (outcome, reason, details).
pub async fn audit_rows(t: &TestApp, event: &str) -> Vec<(String, Option<String>, Value)> {
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT outcome, reason, details FROM audit_events WHERE event = $1 ORDER BY id")
            .bind(event)
            .fetch_all(t.app.db.pool())
            .await
            .expect("audit rows");
    rows.into_iter()
        .map(|(outcome, reason, details)| (outcome, reason, serde_json::from_str(&details).expect("JSON details")))
        .collect()
}

pub fn now() -> i64 {
    sekisho_authz::time::now_unix()
}
