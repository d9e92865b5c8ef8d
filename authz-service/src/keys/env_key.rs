//! The signing key given in `JWT_PRIVATE_KEY` / `JWT_PUBLIC_KEY` (PEM, PKCS#8 /
//! SubjectPublicKeyInfo, P-256), as the seed deployment configured it.

use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvKeyError {
    #[error("must be a PEM \"PRIVATE KEY\" (PKCS#8) holding a P-256 key")]
    BadPrivateKey,
    #[error("must be a PEM \"PUBLIC KEY\" holding a P-256 key")]
    BadPublicKey,
    #[error("does not match JWT_PRIVATE_KEY")]
    Mismatch,
}

impl EnvKeyError {
    /// The variable the operator has to fix.
    pub fn variable(self) -> &'static str {
        match self {
            EnvKeyError::BadPrivateKey => "JWT_PRIVATE_KEY",
            EnvKeyError::BadPublicKey | EnvKeyError::Mismatch => "JWT_PUBLIC_KEY",
        }
    }
}

/// Parses the private key and, when given, checks that the public key belongs to it.
pub fn from_pems(private_pem: &str, public_pem: Option<&str>) -> Result<SigningKey, EnvKeyError> {
    let key = SigningKey::from_pkcs8_pem(&unescape_newlines(private_pem)).map_err(|_| EnvKeyError::BadPrivateKey)?;
    if let Some(public_pem) = public_pem {
        let public =
            VerifyingKey::from_public_key_pem(&unescape_newlines(public_pem)).map_err(|_| EnvKeyError::BadPublicKey)?;
        if public != *key.verifying_key() {
            return Err(EnvKeyError::Mismatch);
        }
    }
    Ok(key)
}

/// Env files and container platforms often carry a PEM on one line with literal
/// `\n`; accept that spelling too.
fn unescape_newlines(pem: &str) -> String {
    pem.trim().replace("\\n", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    fn pems(seed: u8) -> (String, String) {
        let key = SigningKey::from_slice(&[seed; 32]).unwrap();
        let private = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
        (private, public)
    }

    #[test]
    fn accepts_a_matching_pair_and_one_line_pems() {
        let (private, public) = pems(1);
        assert!(from_pems(&private, Some(&public)).is_ok());
        assert!(from_pems(&private.replace('\n', "\\n"), None).is_ok());
    }

    #[test]
    fn refuses_mismatched_and_malformed_keys() {
        let (private, _) = pems(1);
        let (_, other_public) = pems(2);
        assert_eq!(from_pems(&private, Some(&other_public)).err(), Some(EnvKeyError::Mismatch));
        assert_eq!(from_pems("garbage", None).err(), Some(EnvKeyError::BadPrivateKey));
        assert_eq!(from_pems(&private, Some("garbage")).err(), Some(EnvKeyError::BadPublicKey));
    }
}
