//! The service tests' part of the secret scan (`sekisho-e2e`'s `secret_scan`,
//! run last by `cargo xtask test`): the secrets these tests see are registered
//! in `target/sekisho-secrets/`, and what could leak them — the service's
//! logs, in process, and each test database's audit table — is written under
//! `target/sekisho-logs/authz-service/`. Same file format as the e2e harness:
//! one `kind<TAB>secret` per line.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use sqlx::{AnyConnection, Connection};

/// Shorter strings would match by chance; the scan ignores them too.
const MIN_SECRET_LEN: usize = 16;

/// `target/`, found from this test binary (`target/debug/deps/<test>`), so
/// `CARGO_TARGET_DIR` is honoured.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors().nth(3).expect("the binary is under target/<profile>/deps").to_path_buf()
}

fn binary_name() -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "test".into())
}

fn logs_dir() -> PathBuf {
    target_dir().join("sekisho-logs").join("authz-service")
}

/// Records `secret` for the scan. Panics if it cannot: a scan missing
/// secrets would pass for the wrong reason.
pub fn register(kind: &str, secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN || secret.contains(['\n', '\t']) {
        return;
    }
    let dir = target_dir().join("sekisho-secrets");
    let path = dir.join(format!("authz-service-{}.tsv", std::process::id()));
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        OpenOptions::new().create(true).append(true).open(&path)?.write_all(format!("{kind}\t{secret}\n").as_bytes())
    });
    if let Err(e) = written {
        panic!("cannot register a secret in {}: {e}", path.display());
    }
}

/// Sends the service's logs (everything this test binary runs in process) to
/// a file for the scan, at debug level for the service: no level may leak.
pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let dir = logs_dir();
        std::fs::create_dir_all(&dir).expect("the scan's log directory");
        let path = dir.join(format!("{}-{}.log", binary_name(), std::process::id()));
        let file = OpenOptions::new().create(true).append(true).open(&path).expect("the scan's log file");
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,sekisho_authz=debug"))
            .with_writer(Mutex::new(file))
            .with_ansi(false)
            .try_init();
    });
}

/// Writes the audit table of the database at `url` next to the logs. A test
/// that failed before creating the table leaves no dump; that is reported.
pub async fn dump_audit(url: &str, label: &str) {
    // The test may not have opened the service in this process (CLI tests run the binary).
    sqlx::any::install_default_drivers();
    let rows = match AnyConnection::connect(url).await {
        Ok(mut conn) => {
            let rows = sekisho_authz::storage::audit_events::list(&mut conn, None, i64::MAX).await;
            let _ = conn.close().await;
            rows
        }
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => return eprintln!("no audit dump for the secret scan ({label}): {e}"),
    };
    let path = logs_dir().join(format!("{}-{}-{label}.audit.txt", binary_name(), std::process::id()));
    let text: String = rows.iter().map(|row| format!("{row:?}\n")).collect();
    std::fs::create_dir_all(logs_dir()).and_then(|()| std::fs::write(&path, text)).expect("the audit dump");
}

/// JSON fields whose string values are secrets, wherever they appear (not
/// `code`, too common a name: `oauth::authorize_code` registers codes).
const SECRET_FIELDS: [&str; 6] =
    ["access_token", "refresh_token", "id_token", "client_secret", "registration_access_token", "api_key"];

/// Registers the string values of secret-named fields anywhere in `value`.
pub fn register_json(value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for (name, field) in map {
                match field {
                    Value::String(s) if SECRET_FIELDS.contains(&name.as_str()) => register(name, s),
                    other => register_json(other),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(register_json),
        _ => {}
    }
}
