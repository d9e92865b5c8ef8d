//! The last suite of `cargo xtask test` (not run by `cargo test --workspace`:
//! `test = false` in Cargo.toml): no secret any earlier suite registered — admin
//! tokens, master keys, access and refresh tokens, codes, client secrets, API
//! keys — appears, plain or URL-encoded, in any log or audit dump they left
//! under `target/sekisho-logs/`. See `sekisho_e2e::secret_scan`.

use sekisho_e2e::secret_scan::{logs_dir, scan, secrets_dir};

#[test]
fn no_registered_secret_appears_in_any_captured_log_or_audit_dump() {
    let report = scan(&secrets_dir(), &logs_dir()).expect("the scan runs");
    eprintln!(
        "secret scan: {} secrets (and their URL-encoded forms) in {} files, {} bytes",
        report.secrets, report.files, report.bytes
    );
    let listing: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            let form = if f.url_encoded { " (URL-encoded)" } else { "" };
            format!("{}:{}: {} {}{form}", f.file.display(), f.line, f.kind, f.fingerprint)
        })
        .collect();
    assert!(listing.is_empty(), "secrets found in logs or audit dumps:\n{}", listing.join("\n"));
}
