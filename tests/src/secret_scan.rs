//! The secret scan (SPEC S4, F9): no secret the test run handled may appear
//! in any log it captured or in any audit table it left behind.
//!
//! Three parts, used at different times:
//! - [`register`]: every secret the harness sees (admin token, master key,
//!   minted and issued tokens, client secrets, API keys) is appended to a
//!   per-process file under `target/sekisho-secrets/` (test-only, never
//!   committed). The service's own tests write the same format
//!   (`authz-service/tests/common/scan.rs`): one `kind<TAB>secret` per line.
//! - [`archive`]: when a stack stops, its captured stdout/stderr and a dump
//!   of its audit table are copied under `target/sekisho-logs/`.
//! - [`scan`]: after every other suite, `cargo xtask test` runs
//!   `tests/secret_scan.rs`, which looks for every registered secret, and its
//!   URL-encoded form, in every file under `target/sekisho-logs/`. Findings
//!   name the file, the line and a fingerprint of the secret — never the
//!   secret itself.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fs::OpenOptions;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::stack::Stack;

/// Shorter strings are not worth scanning for: they would match by chance.
pub const MIN_SECRET_LEN: usize = 16;

/// JSON fields whose string values are secrets, wherever they appear in a
/// response. Not `code`: too common a name; authorization codes are
/// registered where a test takes them from a redirect.
pub const SECRET_FIELDS: [&str; 6] =
    ["access_token", "refresh_token", "id_token", "client_secret", "registration_access_token", "api_key"];

/// Where the registered secrets are: `target/sekisho-secrets/`.
pub fn secrets_dir() -> PathBuf {
    xtask::workspace::target_dir().join("sekisho-secrets")
}

/// Where the captured logs and audit dumps are: `target/sekisho-logs/`.
pub fn logs_dir() -> PathBuf {
    xtask::workspace::target_dir().join("sekisho-logs")
}

/// Records `secret` (of `kind`, e.g. `access_token`) for the final scan.
/// Panics if it cannot: a scan missing secrets would pass for the wrong reason.
pub fn register(kind: &str, secret: &str) {
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN || secret.contains(['\n', '\t']) {
        return;
    }
    let dir = secrets_dir();
    let path = dir.join(format!("e2e-{}.tsv", std::process::id()));
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        // One write of one line with O_APPEND: lines from parallel tests never interleave.
        OpenOptions::new().create(true).append(true).open(&path)?.write_all(format!("{kind}\t{secret}\n").as_bytes())
    });
    if let Err(e) = written {
        panic!("cannot register a secret for the secret scan in {}: {e}", path.display());
    }
}

/// Registers the string values of [`SECRET_FIELDS`] anywhere in `value`.
pub fn register_json(value: &Value) {
    for (kind, secret) in secret_strings(value) {
        register(kind, secret);
    }
}

/// `(field, value)` of every string under a [`SECRET_FIELDS`] name in `value`.
fn secret_strings(value: &Value) -> Vec<(&str, &str)> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(name, field)| match field {
                Value::String(s) if SECRET_FIELDS.contains(&name.as_str()) => vec![(name.as_str(), s.as_str())],
                other => secret_strings(other),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(secret_strings).collect(),
        _ => Vec::new(),
    }
}

/// Registers what a `sekisho-authz` command printed: the secrets in a JSON
/// answer, or the one-line answer of a command that prints only a secret.
pub fn register_cli_output(args: &[&str], stdout: &str) {
    if let Ok(json) = serde_json::from_str::<Value>(stdout) {
        return register_json(&json);
    }
    match args {
        ["token", "mint", ..] => register("access_token", stdout),
        ["api-keys", "create" | "rotate", ..] => register("api_key", stdout),
        _ => {}
    }
}

/// Registers the stack's master keys: from its environment, or the key file
/// the service created in its data directory.
pub fn register_master_keys(stack: &Stack) {
    for (name, value) in stack.authz_cli_env() {
        match name.as_str() {
            "SEKISHO_MASTER_KEY" => register("master_key", &value),
            "SEKISHO_MASTER_KEYS_PREVIOUS" => value.split(',').for_each(|key| register("master_key", key)),
            _ => {}
        }
    }
    if let Ok(key) = std::fs::read_to_string(stack.data_dir().join("authz").join("master.key")) {
        register("master_key", &key);
    }
}

/// Copies the stack's captured output and a dump of its audit table under
/// [`logs_dir`]. Called when the stack stops; problems are reported, not
/// raised, since this runs in `Drop`.
pub fn archive(stack: &Stack) {
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let target = logs_dir().join(format!("e2e-{}-{sequence}", std::process::id()));
    if let Err(e) = archive_to(stack, &target) {
        eprintln!("sekisho-e2e: cannot archive the stack's logs for the secret scan: {e:#}");
    }
}

fn archive_to(stack: &Stack, target: &Path) -> Result<()> {
    std::fs::create_dir_all(target).with_context(|| format!("cannot create {}", target.display()))?;
    for log in stack.logs()? {
        std::fs::write(target.join(&log.name), log.text)?;
    }
    let audit = stack.authz_cli(&["audit", "list", "--json", "--limit", "10000"]).context("dumping the audit table")?;
    std::fs::write(target.join("audit.json"), audit)?;
    Ok(())
}

/// One secret found where it must not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    pub line: usize,
    pub kind: String,
    /// A fingerprint of the secret, so findings can be told apart without showing it.
    pub fingerprint: String,
    pub url_encoded: bool,
}

#[derive(Debug)]
pub struct ScanReport {
    pub secrets: usize,
    pub files: usize,
    pub bytes: u64,
    pub findings: Vec<Finding>,
}

/// A needle: a secret, or its URL-encoded form.
struct Needle {
    bytes: Vec<u8>,
    kind: String,
    fingerprint: String,
    url_encoded: bool,
}

/// Scans every file under `logs` for every secret registered under `secrets`.
/// Fails, rather than passing vacuously, when there is nothing to scan for or
/// nothing to scan.
pub fn scan(secrets: &Path, logs: &Path) -> Result<ScanReport> {
    let registered = read_secrets(secrets)?;
    if registered.is_empty() {
        bail!("no secrets were registered under {}: did the other suites run?", secrets.display());
    }
    let mut files = Vec::new();
    collect_files(logs, &mut files)?;
    if files.is_empty() {
        bail!("no logs were captured under {}: did the other suites run?", logs.display());
    }
    let needles = needles(&registered);
    let index = index(&needles);
    let mut report = ScanReport { secrets: registered.len(), files: files.len(), bytes: 0, findings: Vec::new() };
    for file in files {
        let text = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        report.bytes += text.len() as u64;
        for (number, line) in text.split(|b| *b == b'\n').enumerate() {
            for needle in find_in(line, &needles, &index) {
                report.findings.push(Finding {
                    file: file.clone(),
                    line: number + 1,
                    kind: needle.kind.clone(),
                    fingerprint: needle.fingerprint.clone(),
                    url_encoded: needle.url_encoded,
                });
            }
        }
    }
    Ok(report)
}

/// `secret → kind` from every `*.tsv` under `dir`.
fn read_secrets(dir: &Path) -> Result<HashMap<String, String>> {
    let mut secrets = HashMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(secrets),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "tsv") {
            continue;
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for line in text.lines() {
            if let Some((kind, secret)) = line.split_once('\t')
                && secret.len() >= MIN_SECRET_LEN
            {
                secrets.entry(secret.to_owned()).or_insert_with(|| kind.to_owned());
            }
        }
    }
    Ok(secrets)
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(())
}

fn needles(secrets: &HashMap<String, String>) -> Vec<Needle> {
    let mut needles = Vec::new();
    for (secret, kind) in secrets {
        let fingerprint = fingerprint(secret);
        let encoded = url_encode(secret);
        if encoded != *secret {
            needles.push(Needle {
                bytes: encoded.into_bytes(),
                kind: kind.clone(),
                fingerprint: fingerprint.clone(),
                url_encoded: true,
            });
        }
        needles.push(Needle { bytes: secret.as_bytes().to_vec(), kind: kind.clone(), fingerprint, url_encoded: false });
    }
    needles
}

/// Needles by their first [`MIN_SECRET_LEN`] bytes: one hash lookup per byte
/// of text finds every candidate, however many secrets there are.
fn index(needles: &[Needle]) -> HashMap<&[u8], Vec<usize>> {
    let mut index: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, needle) in needles.iter().enumerate() {
        index.entry(&needle.bytes[..MIN_SECRET_LEN]).or_default().push(i);
    }
    index
}

fn find_in<'n>(line: &[u8], needles: &'n [Needle], index: &HashMap<&[u8], Vec<usize>>) -> Vec<&'n Needle> {
    let mut found: Vec<&Needle> = Vec::new();
    for start in 0..line.len().saturating_sub(MIN_SECRET_LEN - 1) {
        let Some(candidates) = index.get(&line[start..start + MIN_SECRET_LEN]) else { continue };
        for &i in candidates {
            let needle = &needles[i];
            if line[start..].starts_with(&needle.bytes) && !found.iter().any(|f| std::ptr::eq(*f, needle)) {
                found.push(needle);
            }
        }
    }
    found
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 64 bits of a keyed-with-constants SipHash: enough to tell findings apart,
/// far too little to recover or test guesses of a 128-bit-plus secret.
fn fingerprint(secret: &str) -> String {
    let mut hasher = DefaultHasher::new();
    secret.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn finds_plain_and_url_encoded_secrets_and_never_prints_them() {
        let root = tempfile::tempdir().unwrap();
        let (secrets, logs) = (root.path().join("secrets"), root.path().join("logs"));
        write(&secrets, "a.tsv", "api_key\tsek_AAAAAAAAAAAAAAAAAAAA\nmaster_key\tab+/cdefghijklmnopqrs=\nshort\tabc\n");
        write(&logs.join("stack"), "authz.stderr.log", "ok\nkey=sek_AAAAAAAAAAAAAAAAAAAA!\nfine\n");
        write(&logs, "other.log", "x ab%2B%2Fcdefghijklmnopqrs%3D y\nab+/cdefghijklmnopqr\n");
        let report = scan(&secrets, &logs).unwrap();
        assert_eq!((report.secrets, report.files), (2, 2));
        let found: Vec<(String, usize, bool)> = report
            .findings
            .iter()
            .map(|f| (f.file.file_name().unwrap().to_string_lossy().into_owned(), f.line, f.url_encoded))
            .collect();
        // In path order: logs/other.log, then logs/stack/authz.stderr.log.
        assert_eq!(found, [("other.log".into(), 1, true), ("authz.stderr.log".into(), 2, false)]);
        assert!(!format!("{:?}", report.findings).contains("sek_AAAA"));
    }

    #[test]
    fn refuses_to_pass_with_nothing_to_scan() {
        let root = tempfile::tempdir().unwrap();
        let (secrets, logs) = (root.path().join("secrets"), root.path().join("logs"));
        assert!(scan(&secrets, &logs).unwrap_err().to_string().contains("no secrets"));
        write(&secrets, "a.tsv", "api_key\tsek_AAAAAAAAAAAAAAAAAAAA\n");
        assert!(scan(&secrets, &logs).unwrap_err().to_string().contains("no logs"));
        write(&logs, "clean.log", "nothing here\n");
        assert!(scan(&secrets, &logs).unwrap().findings.is_empty());
    }

    #[test]
    fn collects_secret_fields_from_json_anywhere() {
        let value = serde_json::json!({
            "a": [{ "refresh_token": "r1", "nested": { "client_secret": "s1" } }],
            "client_id": "not a secret",
            "api_key": 7,
        });
        let mut found = secret_strings(&value);
        found.sort();
        assert_eq!(found, [("client_secret", "s1"), ("refresh_token", "r1")]);
    }
}
