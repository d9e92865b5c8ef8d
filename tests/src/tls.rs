//! Certificates for a stack with TLS: a throw-away CA and a server
//! certificate it signs, made at start-up (never committed, never reused
//! across runs), so that a client can trust the stack by trusting the CA alone.
//!
//! The server certificate names `localhost` and `127.0.0.1`; the stack's base
//! URL uses the address.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use xtask::envoy_config::TlsFiles;

/// Where a stack's certificates are.
#[derive(Debug, Clone)]
pub struct StackCertificates {
    /// The CA to trust (PEM), for clients: `SSL_CERT_FILE`, `--cacert`.
    pub ca: PathBuf,
    /// What Envoy's listener serves.
    pub server: TlsFiles,
}

/// Makes a CA and a server certificate for `localhost`/`127.0.0.1` in `dir`:
/// `ca.pem`, `server.pem` (the chain) and `server.key` (owner-only).
pub fn generate(dir: &Path) -> Result<StackCertificates> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.distinguished_name.push(DnType::CommonName, "Sekisho development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut server_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    server_params.distinguished_name.push(DnType::CommonName, "localhost");
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server = server_params.signed_by(&server_key, &ca)?;

    let certificates = StackCertificates {
        ca: dir.join("ca.pem"),
        server: TlsFiles { cert_chain: dir.join("server.pem"), private_key: dir.join("server.key") },
    };
    write(&certificates.ca, &ca.pem(), 0o644)?;
    write(&certificates.server.cert_chain, &format!("{}{}", server.pem(), ca.pem()), 0o644)?;
    write(&certificates.server.private_key, &server_key.serialize_pem(), 0o600)?;
    Ok(certificates)
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<()> {
    // Removed first: a mode only applies to a file that is created.
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
