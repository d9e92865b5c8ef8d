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

fn json_of(env: &TestEnv, args: &[&str]) -> Value {
    let stdout = stdout_of(env, args);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: not one JSON document ({e}): {stdout}"))
}

#[tokio::test]
async fn every_listing_show_and_create_command_speaks_json() {
    on_each_backend(|env| async move {
        let created = json_of(&env, &["instances", "create", "demo", "--auth-mode", "both", "--json"]);
        assert_eq!(created["saved"], "created");
        assert_eq!(created["resource"], "http://127.0.0.1:8080/mcp/demo");
        assert_eq!(created["instance"]["auth_mode"], "both");
        assert_eq!(json_of(&env, &["instances", "show", "demo", "--json"])["instance"]["id"], "demo");
        assert_eq!(json_of(&env, &["instances", "list", "--json"]).as_array().unwrap().len(), 1);
        let missing = cli(&env, &["instances", "show", "nope", "--json"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(missing.stdout.is_empty());

        let args = ["clients", "register", "--name", "batch", "--confidential", "--grant-type", "client_credentials"];
        let client = json_of(&env, &[&args[..], &["--scope", "mcp:read", "--json"]].concat());
        let client_id = client["client_id"].as_str().unwrap().to_owned();
        assert!(client["client_secret"].as_str().is_some_and(|s| s.len() >= 32));
        let clients = json_of(&env, &["clients", "list", "--json"]);
        assert!(clients.as_array().unwrap().iter().any(|c| c["client_id"] == client_id.as_str()));
        assert!(!clients.to_string().contains(client["client_secret"].as_str().unwrap()), "never the secret");

        let key = json_of(
            &env,
            &["api-keys", "create", "--name", "n", "--instance", "demo", "--scope", "mcp:read", "--json"],
        );
        let plaintext = key["api_key"].as_str().unwrap().to_owned();
        let id = key["key"]["id"].as_str().unwrap().to_owned();
        assert!(plaintext.starts_with("sek_"));
        let shown = json_of(&env, &["api-keys", "show", &id, "--json"]);
        assert_eq!((shown["id"].as_str(), shown["status"].as_str()), (Some(id.as_str()), Some("active")));
        assert!(!shown.to_string().contains(&plaintext), "the key is shown only once");
        assert_eq!(json_of(&env, &["api-keys", "list", "--json"]).as_array().unwrap().len(), 1);
        let rotated = json_of(&env, &["api-keys", "rotate", &id, "--json"]);
        assert_eq!(rotated["replaced"]["id"], id.as_str());
        assert_ne!(rotated["api_key"], plaintext.as_str());
        let new_id = rotated["key"]["id"].as_str().unwrap().to_owned();
        assert_eq!(json_of(&env, &["api-keys", "revoke", &new_id, "--json"])["status"], "revoked");

        let minted = json_of(&env, &["token", "mint", "--instance", "demo", "--scope", "mcp:read", "--json"]);
        assert_eq!((minted["token_type"].as_str(), minted["scope"].as_str()), (Some("Bearer"), Some("mcp:read")));
        assert_eq!(minted["expires_in"], 900);
        let jti = minted["jti"].as_str().unwrap();
        assert_eq!(minted["access_token"].as_str().unwrap().split('.').count(), 3);

        let keys = json_of(&env, &["keys", "list", "--json"]);
        let rotation = json_of(&env, &["keys", "rotate", "--json"]);
        let next_before = keys.as_array().unwrap().iter().find(|k| k["status"] == "next").unwrap()["kid"].clone();
        assert_eq!(rotation["current"], next_before, "the pre-published next key became current");

        let audit = json_of(&env, &["audit", "list", "--json", "--limit", "100"]);
        let events = audit.as_array().unwrap();
        assert!(events.iter().any(|e| e["event"] == "token.minted" && e["details"]["jti"] == jti), "{audit}");
        assert!(
            !audit.to_string().contains(&plaintext)
                && !audit.to_string().contains(minted["access_token"].as_str().unwrap())
        );

        assert_eq!(json_of(&env, &["clients", "revoke", &client_id, "--json"])["revoked"], client_id.as_str());
        json_of(&env, &["instances", "create", "scratch", "--json"]);
        assert_eq!(json_of(&env, &["instances", "delete", "scratch", "--json"])["deleted"], "scratch");
    })
    .await;
}

#[test]
fn help_names_every_command_and_where_the_settings_are() {
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_sekisho-authz")).args(args).env_clear().output().unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let help = run(&["--help"]);
    for command in ["serve", "migrate", "instances", "keys", "token", "audit", "clients", "api-keys"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(command)), "--help lacks {command}:\n{help}");
    }
    assert!(help.contains("examples/sekisho.env") && help.contains("Exit status"), "{help}");
    let instances = run(&["instances", "--help"]);
    for command in ["create", "list", "show", "delete"] {
        assert!(instances.lines().any(|l| l.trim_start().starts_with(command)), "{instances}");
    }
    for args in [&["instances", "list", "--help"][..], &["api-keys", "show", "--help"], &["token", "mint", "--help"]] {
        assert!(run(args).contains("--json"), "{args:?} has --json");
    }
}
