//! Storage properties that the HTTP tests do not show: SQLite settings,
//! repeatable migrations, encryption at rest, and audit rows that roll back
//! with the change they describe.

mod common;

use common::{Backend, on_each_backend};
use sekisho_authz::audit::Actor;
use sekisho_authz::registry::{self, InstanceSpec, Saved};
use sekisho_authz::storage::audit_events;

#[tokio::test]
async fn sqlite_runs_in_wal_mode_with_a_busy_timeout() {
    common::run_on(Backend::Sqlite, &|env: common::TestEnv| async move {
        let t = env.open().await;
        let pool = t.app.db.pool();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.unwrap();
        assert_eq!(mode, "wal");
        let timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(pool).await.unwrap();
        assert_eq!(timeout, 5000);
    })
    .await;
}

#[tokio::test]
async fn opening_twice_migrates_once_and_keeps_the_keys() {
    on_each_backend(|env| async move {
        let first = env.open().await;
        let kid = first.app.keys.current().signer().kid().to_owned();
        let second = env.open().await;
        assert_eq!(second.app.keys.current().signer().kid(), kid);
        let live: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys WHERE status <> 'retired'")
            .fetch_one(first.app.db.pool())
            .await
            .unwrap();
        assert_eq!(live, 2);
    })
    .await;
}

#[tokio::test]
async fn private_keys_are_sealed_with_the_master_key_id() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let sealed: Vec<String> =
            sqlx::query_scalar("SELECT private_key FROM signing_keys").fetch_all(t.app.db.pool()).await.unwrap();
        assert_eq!(sealed.len(), 2);
        let master_key = sekisho_authz::config::Config::from_lookup(|name| env.vars().get(name).cloned())
            .unwrap()
            .master_key
            .unwrap();
        for value in sealed {
            assert!(value.starts_with(&format!("v1:{}:", master_key.id())), "{value}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_refused_change_leaves_no_audit_row() {
    on_each_backend(|env| async move {
        let t = env.open().await;
        let db = &t.app.db;
        let actor = Actor::cli();
        registry::create(db, "demo", &InstanceSpec::default(), &actor).await.unwrap();
        assert!(registry::create(db, "demo", &InstanceSpec::default(), &actor).await.is_err());
        assert!(registry::delete(db, "nope", &actor).await.is_err());
        let (_, saved) = registry::put(db, "demo", &InstanceSpec::default(), &actor).await.unwrap();
        assert_eq!(saved, Saved::Unchanged);
        let rows = audit_events::list(db.pool(), Some("instance.created"), 10).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].actor, "cli");
        let others = audit_events::list(db.pool(), Some("instance.updated"), 10).await.unwrap();
        assert!(others.is_empty());
        let deleted = audit_events::list(db.pool(), Some("instance.deleted"), 10).await.unwrap();
        assert!(deleted.is_empty());
    })
    .await;
}
