//! Reading the audit log (SPEC S4): every filter of `GET /admin/v1/audit` and
//! `sekisho-authz audit list` selects exactly the events it names, pages do
//! not overlap or skip, bad filters are 400, and a wrong admin token is itself
//! an audit event.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TestApp, on_each_backend};
use sekisho_authz::audit::{Actor, AuditEvent, EventKind};
use sekisho_authz::storage::audit_events;
use serde_json::{Value, json};

/// Events at fixed times (unix seconds 1000–4000), so time filters have known answers.
async fn seed(t: &TestApp) {
    let client = Actor::client(Some("192.0.2.1".into()));
    let events = [
        (1000, AuditEvent::success(EventKind::TokenIssued, &client, json!({})).with_client("A").with_subject("alice")),
        (2000, AuditEvent::failure(EventKind::TokenRefused, &client, "invalid_grant", json!({})).with_client("A")),
        (3000, AuditEvent::success(EventKind::TokenIssued, &client, json!({})).with_client("B").with_subject("bob")),
        (
            4000,
            AuditEvent::failure(EventKind::LoginFailed, &Actor::anonymous(None), "x", json!({})).with_subject("alice"),
        ),
    ];
    let mut tx = t.app.db.begin().await.unwrap();
    for (at, event) in &events {
        audit_events::insert(&mut tx, *at, event).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// The `at` of each event a query returns, in the order returned.
async fn times(t: &TestApp, query: &str) -> Vec<i64> {
    let reply = t.admin(Method::GET, &format!("/admin/v1/audit?{query}"), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{query}: {reply:?}");
    reply.body["events"].as_array().unwrap().iter().map(|e| e["at"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn each_filter_selects_exactly_its_events() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        seed(&t).await;
        // Start-up wrote key.generated rows "now"; the seeded ones are far older.
        assert_eq!(times(&t, "until=5000").await, [4000, 3000, 2000, 1000], "newest first");
        assert_eq!(times(&t, "since=1500&until=3500").await, [3000, 2000], "since inclusive, until exclusive");
        assert_eq!(times(&t, "since=2000&until=3000").await, [2000]);
        assert_eq!(times(&t, "since=1970-01-01T00:33:20Z&until=1970-01-01T00:50:00Z").await, [2000], "RFC 3339");
        let recent = times(&t, "since=1h").await;
        assert!(!recent.is_empty() && recent.iter().all(|at| *at > 4000), "a duration ago: only today's events");
        assert_eq!(times(&t, "client_id=A").await, [2000, 1000]);
        assert_eq!(times(&t, "subject=alice").await, [4000, 1000]);
        assert_eq!(times(&t, "event=token.issued").await, [3000, 1000]);
        assert_eq!(times(&t, "outcome=failure").await, [4000, 2000]);
        assert_eq!(times(&t, "client_id=A&outcome=success").await, [1000], "filters combine");
        assert_eq!(times(&t, "subject=alice&event=login.failed&until=4001&since=4000").await, [4000]);
        assert!(times(&t, "client_id=nobody").await.is_empty());

        let generated = t.admin(Method::GET, "/admin/v1/audit?event=key.generated&outcome=success", None).await;
        assert!(!generated.body["events"].as_array().unwrap().is_empty(), "real events are found the same way");
    })
    .await;
}

#[tokio::test]
async fn pages_follow_one_another_without_overlap_or_gap() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        seed(&t).await;
        let everything = t.admin(Method::GET, "/admin/v1/audit?limit=1000", None).await;
        let all: Vec<i64> =
            everything.body["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(everything.body.get("next_before").is_none(), "a short page is the last");
        assert!(all.len() >= 5);

        let mut seen = Vec::new();
        let mut query = "limit=2".to_owned();
        loop {
            let page = t.admin(Method::GET, &format!("/admin/v1/audit?{query}"), None).await;
            assert_eq!(page.status, StatusCode::OK, "{page:?}");
            let ids: Vec<i64> =
                page.body["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
            assert!(ids.len() <= 2);
            seen.extend(ids);
            match page.body["next_before"].as_i64() {
                Some(before) => query = format!("limit=2&before={before}"),
                None => break,
            }
        }
        assert_eq!(seen, all, "the pages, in order, are the whole log");
        assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), seen.len(), "no event twice");
    })
    .await;
}

#[tokio::test]
async fn bad_filters_are_invalid_request() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        for query in ["outcome=maybe", "since=yesterday", "until=", "before=abc", "limit=0", "subjekt=alice"] {
            let reply = t.admin(Method::GET, &format!("/admin/v1/audit?{query}"), None).await;
            reply.assert_error(StatusCode::BAD_REQUEST, "invalid_request");
        }
    })
    .await;
}

#[tokio::test]
async fn the_cli_filters_the_same_way() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        seed(&t).await;
        let run = |args: &[&str]| -> Vec<i64> {
            let mut command = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"));
            command.args(["audit", "list", "--json"]).args(args).env_clear().envs(env.vars());
            let output = command.output().expect("the binary runs");
            assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
            let events: Value = serde_json::from_slice(&output.stdout).expect("JSON");
            events.as_array().unwrap().iter().map(|e| e["at"].as_i64().unwrap()).collect()
        };
        assert_eq!(run(&["--since", "1500", "--until", "3500"]), [3000, 2000]);
        assert_eq!(run(&["--client", "A", "--until", "5000"]), [2000, 1000]);
        assert_eq!(run(&["--user", "alice"]), [4000, 1000]);
        assert_eq!(run(&["--event", "token.issued", "--outcome", "success"]), [3000, 1000]);
        assert_eq!(run(&["--until", "5000", "--limit", "2", "--before", "999999999"]).len(), 2);
        let bare = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
            .args(["audit", "--since", "1500", "--until", "3500", "--json"])
            .env_clear()
            .envs(env.vars())
            .output()
            .unwrap();
        let bare: Value = serde_json::from_slice(&bare.stdout).expect("`audit` alone lists too");
        assert_eq!(
            bare.as_array().unwrap().iter().map(|e| e["at"].as_i64().unwrap()).collect::<Vec<_>>(),
            [3000, 2000]
        );
        let refused = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
            .args(["audit", "list", "--outcome", "maybe"])
            .env_clear()
            .envs(env.vars())
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "clap refuses a bad filter");
    })
    .await;
}

#[tokio::test]
async fn a_wrong_admin_token_is_audited_without_the_token() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let wrong = "wrong-admin-token-not-a-secret-really";
        let request = Request::get("/admin/v1/instances")
            .header(header::AUTHORIZATION, format!("Bearer {wrong}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(t.send(request).await.status, StatusCode::UNAUTHORIZED);
        let missing = Request::get("/admin/v1/instances").body(Body::empty()).unwrap();
        assert_eq!(t.send(missing).await.status, StatusCode::UNAUTHORIZED);

        let refused = t.admin(Method::GET, "/admin/v1/audit?event=admin.refused", None).await;
        let events = refused.body["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "only the wrong token, not the missing one: {refused:?}");
        assert_eq!(events[0]["outcome"], "failure");
        assert_eq!(events[0]["details"]["path"], "/admin/v1/instances");
        assert!(!refused.body.to_string().contains(wrong));
    })
    .await;
}
