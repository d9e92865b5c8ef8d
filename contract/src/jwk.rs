//! JSON Web Keys (RFC 7517) for ES256 public keys, and the JWKS document.
//!
//! Key ids are RFC 7638 thumbprints, so the same key always has the same `kid`
//! wherever it is loaded from.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::EncodedPoint;
use p256::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwkError {
    #[error("key is not an EC P-256 signing key for ES256")]
    Unsupported,
    #[error("key coordinates are not valid")]
    BadKey,
}

/// DER prefix of a SubjectPublicKeyInfo for an uncompressed P-256 point
/// (id-ecPublicKey, prime256v1, BIT STRING of 65 bytes).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl Jwk {
    /// The public JWK of an ES256 key, `kid` = its RFC 7638 thumbprint.
    pub fn es256(key: &VerifyingKey) -> Jwk {
        let point = key.to_encoded_point(false);
        let (x, y) = (point.x().map(|x| URL_SAFE_NO_PAD.encode(x)), point.y().map(|y| URL_SAFE_NO_PAD.encode(y)));
        Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            kid: Some(thumbprint(key)),
            x,
            y,
            alg: Some(crate::jws::ES256.into()),
            use_: Some("sig".into()),
        }
    }

    /// The verifying key, if this JWK is an ES256 signing key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, JwkError> {
        let es256 = self.kty == "EC"
            && self.crv.as_deref() == Some("P-256")
            && self.alg.as_deref().is_none_or(|a| a == crate::jws::ES256)
            && self.use_.as_deref().is_none_or(|u| u == "sig");
        if !es256 {
            return Err(JwkError::Unsupported);
        }
        let coordinate = |c: &Option<String>| -> Result<[u8; 32], JwkError> {
            let mut out = [0u8; 32];
            let c = c.as_deref().ok_or(JwkError::BadKey)?;
            if c.len() != 43 {
                return Err(JwkError::BadKey);
            }
            match URL_SAFE_NO_PAD.decode_slice(c, &mut out) {
                Ok(32) => Ok(out),
                _ => Err(JwkError::BadKey),
            }
        };
        let (x, y) = (coordinate(&self.x)?, coordinate(&self.y)?);
        let point = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
        VerifyingKey::from_encoded_point(&point).map_err(|_| JwkError::BadKey)
    }
}

/// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
pub fn thumbprint(key: &VerifyingKey) -> String {
    let point = key.to_encoded_point(false);
    let x = point.x().map(|x| URL_SAFE_NO_PAD.encode(x)).unwrap_or_default();
    let y = point.y().map(|y| URL_SAFE_NO_PAD.encode(y)).unwrap_or_default();
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The DER SubjectPublicKeyInfo of a P-256 key, the form BoringSSL imports.
pub fn spki_der(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    let mut der = Vec::with_capacity(P256_SPKI_PREFIX.len() + point.len());
    der.extend_from_slice(&P256_SPKI_PREFIX);
    der.extend_from_slice(point.as_bytes());
    der
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;

    #[test]
    fn jwk_round_trips_and_kid_is_the_rfc7638_thumbprint() {
        let key = SigningKey::from_slice(&[3u8; 32]).unwrap();
        let jwk = Jwk::es256(key.verifying_key());
        assert_eq!(jwk.verifying_key().unwrap(), *key.verifying_key());
        assert_eq!(jwk.kid.as_deref(), Some(thumbprint(key.verifying_key()).as_str()));
        assert_eq!(jwk.kid.as_ref().map(String::len), Some(43));
    }

    #[test]
    fn rfc7638_example_vector_shape() {
        // Same key, same thumbprint, whatever the JSON member order was.
        let key = SigningKey::from_slice(&[5u8; 32]).unwrap();
        let json = serde_json::to_string(&Jwk::es256(key.verifying_key())).unwrap();
        let reparsed: Jwk = serde_json::from_str(&json).unwrap();
        assert_eq!(thumbprint(&reparsed.verifying_key().unwrap()), thumbprint(key.verifying_key()));
    }

    #[test]
    fn refuses_other_key_types_and_off_curve_points() {
        let key = SigningKey::from_slice(&[3u8; 32]).unwrap();
        let mut jwk = Jwk::es256(key.verifying_key());
        jwk.alg = Some("RS256".into());
        assert_eq!(jwk.verifying_key(), Err(JwkError::Unsupported));
        let mut jwk = Jwk::es256(key.verifying_key());
        jwk.use_ = Some("enc".into());
        assert_eq!(jwk.verifying_key(), Err(JwkError::Unsupported));
        let mut jwk = Jwk::es256(key.verifying_key());
        jwk.y = jwk.x.clone();
        assert_eq!(jwk.verifying_key(), Err(JwkError::BadKey));
        let mut jwk = Jwk::es256(key.verifying_key());
        jwk.x = Some("short".into());
        assert_eq!(jwk.verifying_key(), Err(JwkError::BadKey));
    }

    #[test]
    fn spki_der_has_the_p256_prefix_and_the_point() {
        let key = SigningKey::from_slice(&[3u8; 32]).unwrap();
        let der = spki_der(key.verifying_key());
        assert_eq!(der.len(), 91);
        assert_eq!(der[26], 0x04);
    }
}
