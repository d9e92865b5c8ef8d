//! Master key rotation (SPEC S2): values sealed under key A stay readable once
//! B is current and A is listed as previous; `keys reencrypt` re-seals every
//! encrypted field under B; after that the service runs with B alone. The
//! keyed hashes of secrets we handed out (refresh tokens, client secrets, API
//! keys) keep working throughout: their key is re-sealed, not changed.

mod api_keys_support;
mod common;
#[path = "common/oauth.rs"]
mod oauth;

use std::process::{Command, Output};

use api_keys_support::{create_key, verify_raw};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TestApp, TestEnv, kids, on_each_backend};
use oauth::*;
use reqwest::StatusCode;
use sekisho_authz::App;
use sekisho_authz::audit::Actor;
use sekisho_authz::crypto::master_key::MasterKey;
use sekisho_authz::crypto::random;
use sekisho_authz::storage::{oidc_logins, users};
use serde_json::{Value, json};

/// Every encrypted column, as `(table, column)`.
const SEALED: [(&str, &str); 5] = [
    ("signing_keys", "private_key"),
    ("users", "email_sealed"),
    ("users", "profile_sealed"),
    ("oidc_logins", "secrets"),
    ("hash_keys", "sealed_key"),
];

fn new_key() -> String {
    STANDARD.encode(random::bytes::<32>().expect("randomness"))
}

fn key_id(base64: &str) -> String {
    MasterKey::from_slice(&STANDARD.decode(base64).unwrap()).unwrap().id().to_owned()
}

fn cli(env: &TestEnv, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"));
    command.args(args).env_clear().envs(env.vars()).envs(vars.iter().copied());
    command.output().expect("the binary runs")
}

/// The values of every encrypted column, read straight from the database.
async fn sealed_values(t: &TestApp) -> Vec<(String, String)> {
    let mut values = Vec::new();
    for (table, column) in SEALED {
        let sql = format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL");
        let rows: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(t.app.db.pool()).await.expect("select");
        values.extend(rows.into_iter().map(|v| (format!("{table}.{column}"), v)));
    }
    values
}

/// A user and a login in flight, sealed the way the OpenID login seals them.
async fn store_user_and_login(t: &TestApp, subject: &str) {
    let seal = |plain: &str, context: String| t.app.cipher.seal(plain.as_bytes(), &context).expect("seal");
    let row = users::UserRow {
        subject: subject.to_owned(),
        issuer: "https://idp.example".into(),
        upstream_subject: subject.to_owned(),
        email_sealed: Some(seal(r#"{"email":"alice@example.com"}"#, format!("users.email:{subject}"))),
        profile_sealed: Some(seal(r#"{"name":"Alice"}"#, format!("users.profile:{subject}"))),
        created_at: 1,
        updated_at: 1,
        last_login_at: 1,
    };
    let login = oidc_logins::OidcLoginRow {
        state_hash: "state-hash-1".into(),
        request_id: "request-1".into(),
        secrets: seal(r#"{"nonce":"n","verifier":"v"}"#, "oidc_logins.secrets:state-hash-1".into()),
        created_at: 1,
        expires_at: i64::MAX / 2,
    };
    let mut tx = t.app.db.begin().await.expect("begin");
    users::upsert(&mut tx, &row).await.expect("user");
    oidc_logins::insert(&mut tx, &login).await.expect("login");
    tx.commit().await.expect("commit");
}

fn email_of(t: &TestApp, row: &users::UserRow) -> String {
    let sealed = row.email_sealed.as_deref().expect("email");
    String::from_utf8(t.app.cipher.open(sealed, &format!("users.email:{}", row.subject)).expect("opens")).unwrap()
}

/// What must keep working across the rotation: the signing keys, the user's
/// PII, a refresh token and client secret (keyed hashes), an API key.
struct Before {
    kids: Vec<String>,
    client: Registered,
    refresh_token: String,
    api_key: String,
}

async fn check_still_works(t: &TestApp, before: &mut Before) {
    assert_eq!(kids(&t.jwks().await), before.kids, "the same signing keys load");
    let row = users::get(t.app.db.pool(), "alice").await.unwrap().expect("alice");
    assert!(email_of(t, &row).contains("alice@example.com"));
    let server = serve(&t.app).await;
    let refreshed = refresh(&server, &before.client, &before.refresh_token, &[]).await;
    assert_eq!(refreshed.status, StatusCode::OK, "refresh token and client secret still match: {refreshed:?}");
    before.refresh_token = refreshed.json()["refresh_token"].as_str().expect("rotated").to_owned();
    let verified = verify_raw(t, &before.api_key).await;
    assert_eq!(verified.body["valid"], true, "the API key still matches its hash: {verified:?}");
}

#[tokio::test]
async fn rotating_the_master_key_then_reencrypting_lets_the_old_key_go() {
    on_each_backend(|env| async move {
        let key_a = env.master_key.clone();
        let key_b = new_key();
        let t = env.open_with(&HEADLESS).await;
        t.create_instance(json!({ "id": "demo" })).await;
        let server = serve(&t.app).await;
        let client = register_python_style(&server).await;
        let tokens = tokens_for(&server, &client, "mcp:read").await;
        let api_key = create_key(&t, &["demo"], "mcp:read").await["api_key"].as_str().unwrap().to_owned();
        store_user_and_login(&t, "alice").await;
        let mut before = Before {
            kids: kids(&t.jwks().await),
            client,
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_owned(),
            api_key,
        };
        let under_a = sealed_values(&t).await;
        assert_eq!(under_a.len(), 6, "two signing keys, email, profile, login secrets, hash key: {under_a:?}");
        assert!(under_a.iter().all(|(_, v)| v.starts_with(&format!("v1:{}:", key_id(&key_a)))));
        drop((server, t));

        // B alone cannot open what A sealed, and says so instead of starting.
        let error = App::open(env.config_with(&[("SEKISHO_MASTER_KEY", &key_b)]), &Actor::system())
            .await
            .err()
            .expect("B alone refuses to start before re-encryption");
        let message = format!("{error:#}");
        assert!(message.contains(&key_id(&key_a)) && message.contains("SEKISHO_MASTER_KEYS_PREVIOUS"), "{message}");

        // B current, A previous: everything still opens and matches.
        let rotated = [("SEKISHO_MASTER_KEY", key_b.as_str()), ("SEKISHO_MASTER_KEYS_PREVIOUS", key_a.as_str())];
        let mut with_both = rotated.to_vec();
        with_both.extend(HEADLESS);
        let t = env.open_with(&with_both).await;
        check_still_works(&t, &mut before).await;
        drop(t);

        // Re-encrypt one row per transaction; a second run finds nothing to do.
        let run = cli(&env, &rotated, &["keys", "reencrypt", "--batch-size", "1", "--json"]);
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let report: Value = serde_json::from_slice(&run.stdout).expect("JSON report");
        assert_eq!(report["key_id"], key_id(&key_b));
        let resealed: u64 = report["fields"].as_array().unwrap().iter().map(|f| f["resealed"].as_u64().unwrap()).sum();
        assert_eq!(resealed, 6, "{report}");
        assert!(report["fields"].as_array().unwrap().iter().all(|f| f["left_under_other_keys"] == 0), "{report}");
        let again = cli(&env, &rotated, &["keys", "reencrypt", "--json"]);
        let again: Value = serde_json::from_slice(&again.stdout).expect("JSON report");
        assert!(again["fields"].as_array().unwrap().iter().all(|f| f["resealed"] == 0), "idempotent: {again}");

        // Only B now: every value carries B's id, and the service runs without A.
        let mut only_b = vec![("SEKISHO_MASTER_KEY", key_b.as_str())];
        only_b.extend(HEADLESS);
        let t = env.open_with(&only_b).await;
        let under_b = sealed_values(&t).await;
        assert_eq!(under_b.len(), 6);
        for (field, value) in &under_b {
            assert!(value.starts_with(&format!("v1:{}:", key_id(&key_b))), "{field} is not under B: {value}");
        }
        check_still_works(&t, &mut before).await;
        let audit = sekisho_authz::audit::list(&t.app.db, Some("fields.reencrypted"), 100).await.unwrap();
        assert_eq!(audit.len(), 6, "one audit row per one-row batch");
        assert!(audit.iter().all(|e| e.actor == "cli" && e.details["key_id"] == key_id(&key_b)));
    })
    .await;
}

#[tokio::test]
async fn a_value_no_configured_key_opens_is_reported_and_fails_the_run() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let stranger = sekisho_authz::crypto::field::FieldCipher::new(std::sync::Arc::new(
            sekisho_authz::crypto::key_provider::LocalKeyProvider::new(
                MasterKey::from_slice(&random::bytes::<32>().unwrap()).unwrap(),
                Vec::new(),
            ),
        ));
        let row = users::UserRow {
            subject: "bob".into(),
            issuer: "https://idp.example".into(),
            upstream_subject: "bob".into(),
            email_sealed: None,
            profile_sealed: Some(stranger.seal(b"{}", "users.profile:bob").unwrap()),
            created_at: 1,
            updated_at: 1,
            last_login_at: 1,
        };
        let mut tx = t.app.db.begin().await.unwrap();
        users::upsert(&mut tx, &row).await.unwrap();
        tx.commit().await.unwrap();
        drop(t);

        let key_b = new_key();
        let rotated =
            [("SEKISHO_MASTER_KEY", key_b.as_str()), ("SEKISHO_MASTER_KEYS_PREVIOUS", env.master_key.as_str())];
        let run = cli(&env, &rotated, &["keys", "reencrypt", "--json"]);
        assert!(!run.status.success(), "a value left under an unknown key fails the run");
        assert!(String::from_utf8_lossy(&run.stderr).contains("keep SEKISHO_MASTER_KEYS_PREVIOUS"));
        let report: Value = serde_json::from_slice(&run.stdout).expect("JSON report");
        let profile =
            report["fields"].as_array().unwrap().iter().find(|f| f["field"] == "users.profile_sealed").unwrap();
        assert_eq!((profile["unreadable"].as_u64(), profile["left_under_other_keys"].as_i64()), (Some(1), Some(1)));
        let signing = report["fields"].as_array().unwrap().iter().find(|f| f["field"] == "signing_keys.private_key");
        assert_eq!(signing.unwrap()["resealed"], 2, "the rest is re-sealed all the same");
    })
    .await;
}
