//! The CLI as scripts use it: the real binary, configured by environment
//! variables, on the same database as the service.

mod common;

use std::process::{Command, Output};

use common::{TestEnv, kids, on_each_backend, verify};
use serde_json::Value;

fn cli(env: &TestEnv, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"));
    command.args(args).env_clear().envs(env.vars()).env("SEKISHO_ADMIN_TOKEN", "");
    command.output().expect("the binary runs")
}

fn stdout_of(env: &TestEnv, args: &[&str]) -> String {
    let output = cli(env, args);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[tokio::test]
async fn scripts_can_register_instances_mint_tokens_and_rotate_keys() {
    on_each_backend(|env| async move {
        let create = ["instances", "create", "demo", "--tool-scope", "deploy=mcp:admin", "--display-name", "Demo"];
        assert!(stdout_of(&env, &create).starts_with("created instance demo"));
        assert!(stdout_of(&env, &create).starts_with("unchanged instance demo"), "idempotent");
        let listed: Value = serde_json::from_str(&stdout_of(&env, &["instances", "list", "--json"])).unwrap();
        assert_eq!(listed[0]["tool_scopes"]["deploy"], "mcp:admin");

        let minted = stdout_of(&env, &["token", "mint", "--instance", "demo", "--scope", "mcp:read", "--sub", "alice"]);
        let token = minted.strip_suffix('\n').expect("one line");
        assert!(!token.contains('\n') && token.split('.').count() == 3, "only the token: {minted:?}");

        let service = env.open().await;
        let jwks = service.jwks().await;
        let (claims, kid) = verify(token, &jwks).expect("the service's JWKS verifies CLI tokens");
        assert_eq!((claims.sub.as_str(), claims.scope.as_str()), ("alice", "mcp:read"));

        let rotated = stdout_of(&env, &["keys", "rotate"]);
        assert!(rotated.contains(&format!("previous {kid}")), "{rotated}");
        let keys: Value = serde_json::from_str(&stdout_of(&env, &["keys", "list", "--json"])).unwrap();
        assert_eq!(keys.as_array().unwrap().len(), 3);
        let reloaded =
            sekisho_authz::keys::reload::reload_once(&service.app.db, &service.app.cipher, &service.app.keys).await;
        assert!(reloaded, "the service sees the CLI's rotation");
        assert_eq!(kids(&service.jwks().await).len(), 3);

        let audit: Value =
            serde_json::from_str(&stdout_of(&env, &["audit", "list", "--json", "--limit", "3"])).unwrap();
        let names: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["event"].as_str().unwrap()).collect();
        assert_eq!(names, ["key.rotated", "token.minted", "instance.created"]);
        assert!(!audit.to_string().contains(token));

        assert!(stdout_of(&env, &["instances", "delete", "demo"]).starts_with("deleted instance demo"));
        let missing = cli(&env, &["instances", "delete", "demo"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("no instance"));
    })
    .await;
}

#[tokio::test]
async fn configuration_errors_name_the_variable_and_exit_2() {
    let env_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
        .args(["migrate"])
        .env_clear()
        .env("SEKISHO_DATA_DIR", env_dir.path())
        .env("PUBLIC_BASE_URL", "http://127.0.0.1:8080/")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PUBLIC_BASE_URL"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_sekisho-authz"))
        .args(["serve"])
        .env_clear()
        .env("SEKISHO_DATA_DIR", env_dir.path())
        .env("SEKISHO_ENV", "production")
        .env("SEKISHO_MASTER_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SEKISHO_ADMIN_TOKEN"));
}
