//! Start-up with a bad configuration, as an operator meets it: the real
//! binary, `serve`, one bad setting at a time. It must stop before it touches
//! anything, with exit status 2 and one line on stderr naming the variable;
//! and every setting the service reads is documented where operators look.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};

use sekisho_authz::Config;

const BINARY: &str = env!("CARGO_BIN_EXE_sekisho-authz");
const MASTER_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `sekisho-authz serve` with only `vars` (and a data directory and port of its own).
fn serve_with(data_dir: &Path, port: u16, vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .env_clear()
        .env("SEKISHO_DATA_DIR", data_dir)
        .env("SEKISHO_LISTEN", format!("127.0.0.1:{port}"))
        .envs(vars.iter().copied());
    command.output().expect("the binary runs")
}

/// Runs `serve` with `vars`; asserts it refused to start with exactly `line`.
fn refuses(vars: &[(&str, &str)], line: &str) {
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let output = serve_with(data_dir.path(), port, vars);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{vars:?}: {stderr}");
    assert_eq!(stderr, format!("{line}\n"), "{vars:?}");
    assert!(output.stdout.is_empty(), "{vars:?}");
    // Stopped before it touched anything: no database, no key file, no port.
    let created: Vec<_> = std::fs::read_dir(data_dir.path()).unwrap().collect();
    assert!(created.is_empty(), "{vars:?} created {created:?}");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "{vars:?}: something listens");
}

#[test]
fn each_bad_setting_stops_serve_with_one_line_naming_it() {
    refuses(
        &[("PUBLIC_BASE_URL", "foo")],
        r#"error: PUBLIC_BASE_URL: base URL must start with http:// or https://, got "foo""#,
    );
    refuses(
        &[("PUBLIC_BASE_URL", "http://127.0.0.1:8080/")],
        r#"error: PUBLIC_BASE_URL: base URL must be an origin: no path, query, fragment or trailing slash, got "http://127.0.0.1:8080/""#,
    );
    refuses(
        &[("SEKISHO_LISTEN", "localhost")],
        r#"error: SEKISHO_LISTEN: must be an IP:port address, got "localhost""#,
    );
    refuses(&[("SEKISHO_ENV", "prod")], r#"error: SEKISHO_ENV: must be development or production, got "prod""#);
    refuses(
        &[("SEKISHO_ACCESS_TOKEN_TTL", "15m")],
        r#"error: SEKISHO_ACCESS_TOKEN_TTL: must be seconds between 1 and 86400, got "15m""#,
    );
    refuses(&[("SEKISHO_LOG_FORMAT", "xml")], r#"error: SEKISHO_LOG_FORMAT: must be text or json, got "xml""#);
    refuses(&[("SEKISHO_DEV_LOGIN", "yes")], r#"error: SEKISHO_DEV_LOGIN: must be 1 or 0, got "yes""#);
    refuses(
        &[("SEKISHO_REFRESH_TOKEN_TTL", "10")],
        r#"error: SEKISHO_REFRESH_TOKEN_TTL: must be seconds between 60 and 31536000, got "10""#,
    );
    refuses(&[("SEKISHO_MASTER_KEY", "c2hvcnQ=")], "error: SEKISHO_MASTER_KEY: must be base64 of 32 bytes");
    refuses(
        &[("SEKISHO_API_KEY_CACHE_SECONDS", "0")],
        r#"error: SEKISHO_API_KEY_CACHE_SECONDS: must be seconds between 1 and 3600, got "0""#,
    );
    refuses(
        &[
            ("AUTH0_DOMAIN", "acme.eu.auth0.com"),
            ("AUTH0_CLIENT_ID", "sekisho"),
            ("AUTH0_CLIENT_SECRET", "not-a-real-secret"),
            ("SEKISHO_BREAKER_FAILURES", "many"),
        ],
        r#"error: SEKISHO_BREAKER_FAILURES: must be a whole number between 1 and 1000, got "many""#,
    );
    refuses(&[("JWT_PUBLIC_KEY", "x")], "error: JWT_PRIVATE_KEY: must be set when JWT_PUBLIC_KEY is set");
    refuses(
        &[("AUTH0_DOMAIN", "acme.eu.auth0.com")],
        "error: AUTH0_CLIENT_ID: is required with AUTH0_DOMAIN (or SEKISHO_OIDC_CLIENT_ID)",
    );
    refuses(
        &[("DATABASE_URL", "mysql://sekisho:hunter2@db/sekisho")],
        "error: DATABASE_URL: must start with sqlite:, postgres:// or postgresql://",
    );
    refuses(
        &[("DATABASE_URL", "postgresql://sekisho:hunter2@/sekisho")],
        "error: DATABASE_URL: is not a valid PostgreSQL URL (empty host)",
    );
    refuses(
        &[("DATABASE_URL", "postgresql:///sekisho")],
        "error: DATABASE_URL: a PostgreSQL URL must name a host: postgresql://user@host:5432/database",
    );
    // Production: the master key, an https issuer, and an admin token (only `serve` needs that one).
    refuses(&[("SEKISHO_ENV", "production")], "error: SEKISHO_MASTER_KEY: is required when SEKISHO_ENV=production");
    refuses(
        &[
            ("SEKISHO_ENV", "production"),
            ("SEKISHO_MASTER_KEY", MASTER_KEY),
            ("PUBLIC_BASE_URL", "http://mcp.example.com"),
        ],
        r#"error: PUBLIC_BASE_URL: must be https when SEKISHO_ENV=production (http only on loopback), got "http://mcp.example.com""#,
    );
    refuses(
        &[("SEKISHO_ENV", "production"), ("SEKISHO_MASTER_KEY", MASTER_KEY)],
        "error: SEKISHO_ADMIN_TOKEN: is required when SEKISHO_ENV=production",
    );
    refuses(
        &[("SEKISHO_ENV", "production"), ("SEKISHO_MASTER_KEY", MASTER_KEY), ("SEKISHO_DEV_AUTO_CONSENT", "1")],
        "error: SEKISHO_DEV_AUTO_CONSENT: is a development setting and is refused when SEKISHO_ENV=production",
    );
}

#[test]
fn secrets_in_bad_settings_are_never_echoed() {
    let data_dir = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("DATABASE_URL", "postgres://sekisho:hunter2@db:notaport/sekisho"),
        ("SEKISHO_MASTER_KEY", "hunter2hunter2"),
        ("JWT_PRIVATE_KEY", "-----BEGIN PRIVATE KEY-----hunter2"),
    ] {
        let output = serve_with(data_dir.path(), free_port(), &[(variable, value)]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with(&format!("error: {variable}: ")), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn a_usage_mistake_is_also_exit_2_and_a_runtime_failure_exit_1() {
    let output = Command::new(BINARY).args(["instances", "frobnicate"]).env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    // Well configured, but the database is not there: the command fails (1), in one line.
    let data_dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let output = Command::new(BINARY)
        .arg("migrate")
        .env_clear()
        .env("SEKISHO_DATA_DIR", data_dir.path())
        .env("DATABASE_URL", format!("postgresql://postgres@127.0.0.1:{closed}/nothing"))
        .env("SEKISHO_MASTER_KEY", MASTER_KEY)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot connect to the database (DATABASE_URL)"), "{stderr}");
}

#[test]
fn a_port_already_taken_is_exit_1_naming_sekisho_listen() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data_dir = tempfile::tempdir().unwrap();
    let output = serve_with(data_dir.path(), port, &[("RUST_LOG", "off")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: cannot listen on 127.0.0.1:{port} (SEKISHO_LISTEN): ")), "{stderr}");
}

/// Every variable the service reads: the configuration is built with a lookup
/// that records what it is asked for, once bare and once with an upstream
/// provider (whose settings are read only then).
fn variables_read() -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let with_provider =
        [("AUTH0_DOMAIN", "acme.eu.auth0.com"), ("AUTH0_CLIENT_ID", "id"), ("AUTH0_CLIENT_SECRET", "s")];
    for given in [&[][..], &with_provider[..]] {
        let built = Config::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            given.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
        });
        assert!(built.is_ok(), "{:?}", built.err());
    }
    asked.into_inner()
}

#[test]
fn every_setting_is_in_the_example_env_file_the_help_and_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let example = std::fs::read_to_string(root.join("examples/sekisho.env")).expect("examples/sekisho.env");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let help = Command::new(BINARY).arg("--help").env_clear().output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();

    let variables = variables_read();
    assert!(variables.len() >= 30, "{variables:?}");
    for variable in &variables {
        let assignment = format!("#{variable}=");
        assert!(example.lines().any(|l| l.starts_with(&assignment)), "examples/sekisho.env lacks {variable}");
        assert!(help.contains(variable.as_str()), "--help lacks {variable}");
        assert!(readme.contains(&format!("`{variable}`")), "README.md lacks `{variable}`");
    }
    // The example is all comments: loading it as is gives the defaults, and
    // the defaults are a valid configuration.
    assert!(example.lines().all(|l| l.is_empty() || l.starts_with('#')));
}
