//! The master key: the key-encryption key for secrets at rest (SPEC S2).
//!
//! It comes from `SEKISHO_MASTER_KEY`; in development, when that is unset, it is
//! read from `{data_dir}/master.key` and created there (mode 0600) on first use,
//! so a local run needs no set-up and still never stores a secret in clear.

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::config::{Config, Environment};
use crate::crypto::random;

pub const MASTER_KEY_BYTES: usize = 32;

/// A 256-bit AES key with a stable id. Zeroed on drop; `Debug` shows only the id.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    bytes: [u8; MASTER_KEY_BYTES],
}

impl MasterKey {
    pub fn from_slice(bytes: &[u8]) -> Option<MasterKey> {
        let bytes: [u8; MASTER_KEY_BYTES] = bytes.try_into().ok()?;
        // The id is a fingerprint, so a value sealed under another key is
        // recognised as such instead of failing as "corrupt".
        let digest = Sha256::new().chain_update(b"sekisho master key id\0").chain_update(bytes).finalize();
        let id = URL_SAFE_NO_PAD.encode(&digest[..8]);
        Some(MasterKey { id, bytes })
    }

    pub fn generate() -> Result<MasterKey, random::RandomError> {
        let mut bytes = random::bytes::<MASTER_KEY_BYTES>()?;
        let key = MasterKey::from_slice(&bytes);
        bytes.zeroize();
        key.ok_or(random::RandomError)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn bytes(&self) -> &[u8; MASTER_KEY_BYTES] {
        &self.bytes
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("SEKISHO_MASTER_KEY is required in production")]
    RequiredInProduction,
    #[error("cannot read or create the master key file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the master key file {path} does not hold base64 of {MASTER_KEY_BYTES} bytes")]
    Malformed { path: String },
    #[error(transparent)]
    Random(#[from] random::RandomError),
}

/// The master key from the configuration, or from (or created in) the data directory.
pub fn resolve(config: &Config) -> Result<MasterKey, MasterKeyError> {
    if let Some(key) = &config.master_key {
        return Ok(key.clone());
    }
    if config.environment == Environment::Production {
        return Err(MasterKeyError::RequiredInProduction);
    }
    load_or_create(&config.master_key_path())
}

fn load_or_create(path: &Path) -> Result<MasterKey, MasterKeyError> {
    let io = |source| MasterKeyError::Io { path: path.display().to_string(), source };
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_file(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let key = MasterKey::generate()?;
    // Written to a private temporary file and then hard-linked into place: the
    // link fails if another process won the race, and nobody ever reads a
    // half-written key.
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_private(&tmp, &STANDARD.encode(key.bytes())).map_err(io)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::warn!(
                path = %path.display(),
                key_id = key.id(),
                "generated a new master key; back it up, or set SEKISHO_MASTER_KEY: without it stored secrets cannot be decrypted"
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(io)?;
            parse_file(path, &text)
        }
        Err(e) => Err(io(e)),
    }
}

fn parse_file(path: &Path, text: &str) -> Result<MasterKey, MasterKeyError> {
    let malformed = || MasterKeyError::Malformed { path: path.display().to_string() };
    let mut bytes = STANDARD.decode(text.trim()).map_err(|_| malformed())?;
    let key = MasterKey::from_slice(&bytes);
    bytes.zeroize();
    key.ok_or_else(malformed)
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_with_mode_0600_and_reads_back_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let first = load_or_create(&path).unwrap();
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.bytes(), second.bytes());
        assert_eq!(first.id(), second.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn refuses_a_malformed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "c2hvcnQ=\n").unwrap();
        assert!(matches!(load_or_create(&path), Err(MasterKeyError::Malformed { .. })));
    }

    #[test]
    fn debug_shows_the_id_only() {
        let key = MasterKey::from_slice(&[7u8; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(key.id()) && !shown.contains("7, 7"));
    }
}
