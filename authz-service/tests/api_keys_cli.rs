//! `sekisho-authz api-keys …` as scripts use it: the key alone on stdout, the
//! rest on stderr, on the same database as the service.

mod api_keys_support;
mod common;

use std::process::{Command, Output};

use api_keys_support::{now, verify};
use common::{TestEnv, on_each_backend};
use sekisho_contract::api_key::{self, InvalidReason, Verdict};
use serde_json::Value;

fn cli(env: &TestEnv, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
        .args(args)
        .env_clear()
        .envs(env.vars())
        .output()
        .expect("the binary runs")
}

/// stdout of a command that must succeed.
fn run_ok(env: &TestEnv, args: &[&str]) -> String {
    let output = cli(env, args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// The one line a key-printing command must print.
fn only_a_key(stdout: &str) -> String {
    let key = stdout.strip_suffix('\n').expect("a line");
    assert_eq!(api_key::check_format(key), Ok(()), "only the key on stdout: {stdout:?}");
    key.to_owned()
}

#[tokio::test]
async fn scripts_create_list_rotate_and_revoke_keys() {
    on_each_backend(|env| async move {
        run_ok(&env, &["instances", "create", "demo"]);
        run_ok(&env, &["instances", "create", "other"]);
        let create = [
            "api-keys",
            "create",
            "--name",
            "nightly job",
            "--instance",
            "demo",
            "--instance",
            "other",
            "--scope",
            "mcp:read",
            "--expires-in",
            "30d",
        ];
        let output = cli(&env, &create);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let key = only_a_key(&String::from_utf8(output.stdout).unwrap());
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains(&key[..12]) && !stderr.contains(&key), "{stderr}");

        let listed: Value = serde_json::from_str(&run_ok(&env, &["api-keys", "list", "--json"])).unwrap();
        let entry = &listed[0];
        let id = entry["id"].as_str().expect("id").to_owned();
        assert_eq!(entry["name"], "nightly job");
        assert_eq!(entry["instances"], serde_json::json!(["demo", "other"]));
        assert_eq!(entry["created_by"], "cli");
        let expires_at = entry["expires_at"].as_i64().unwrap();
        assert!((now() + 30 * 86_400 - 60..=now() + 30 * 86_400).contains(&expires_at));
        assert!(!listed.to_string().contains(&key));
        let table = run_ok(&env, &["api-keys", "list"]);
        assert!(table.contains(&id) && table.contains(&key[..12]) && !table.contains(&key), "{table}");

        let service = env.open().await;
        assert!(verify(&service, &key).await.is_valid(), "the service knows keys the CLI made");

        let rotated = only_a_key(&run_ok(&env, &["api-keys", "rotate", &id]));
        assert_ne!(rotated, key);
        assert_eq!(verify(&service, &key).await.verdict, Verdict::Invalid(InvalidReason::Revoked));
        let Verdict::Valid(valid) = verify(&service, &rotated).await.verdict else {
            panic!("rotated key not valid")
        };
        assert_eq!(valid.instances, ["demo", "other"]);

        let revoked = run_ok(&env, &["api-keys", "revoke", &valid.key_id]);
        assert!(revoked.starts_with(&format!("revoked API key {}", valid.key_id)), "{revoked}");
        assert_eq!(verify(&service, &rotated).await.verdict, Verdict::Invalid(InvalidReason::Revoked));
    })
    .await;
}

#[tokio::test]
async fn mistakes_fail_with_a_message_and_print_no_key() {
    on_each_backend(|env| async move {
        run_ok(&env, &["instances", "create", "demo"]);
        let cases: [&[&str]; 5] = [
            &["api-keys", "create", "--name", "x", "--instance", "nope", "--scope", "mcp:read"],
            &["api-keys", "create", "--name", "x", "--instance", "demo", "--scope", "nope:nope"],
            &["api-keys", "create", "--name", "x", "--scope", "mcp:read"],
            &["api-keys", "create", "--name", "x", "--instance", "demo", "--scope", "mcp:read", "--expires-in", "soon"],
            &["api-keys", "rotate", "ak_nope"],
        ];
        for args in cases {
            let output = cli(&env, args);
            assert!(!output.status.success(), "{args:?}");
            assert!(output.stdout.is_empty(), "{args:?}");
            assert!(!output.stderr.is_empty(), "{args:?}");
        }
        let unknown = cli(&env, cases[0]);
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("invalid_target"));
    })
    .await;
}
