//! The API key format (SPEC K1), shared by the service that issues keys and the
//! filter that refuses malformed ones without any lookup.
//!
//! `sek_` + 40 base62 characters of randomness (≈238 bits) + 6 base62
//! characters of CRC-32 over the random part. The prefix makes leaked keys easy
//! to scan for; the checksum lets the filter refuse typos and guesses locally.
//! The checksum is not a secret and proves nothing about authenticity: a key is
//! valid only if the service knows its keyed hash.
//!
//! A well-formed key the filter has not seen is sent to the service once
//! ([`VerifyRequest`] at [`crate::paths::API_KEY_VERIFY`]); the answer
//! ([`VerifyResponse`]) is cached for the `cache_seconds` it carries.

pub const PREFIX: &str = "sek_";
const RANDOM_CHARS: usize = 40;
const CHECKSUM_CHARS: usize = 6;
pub const LENGTH: usize = PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;
/// How much of a key may be shown in listings and audit rows to tell keys apart.
pub const DISPLAY_PREFIX: usize = PREFIX.len() + 8;

pub use verify::{InvalidReason, ValidKey, Verdict, VerifyRequest, VerifyResponse};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyFormatError {
    #[error("not a Sekisho API key")]
    WrongShape,
    #[error("API key checksum does not match")]
    BadChecksum,
}

/// A new key. `fill` supplies cryptographically secure random bytes.
pub fn generate(mut fill: impl FnMut(&mut [u8])) -> String {
    let mut random = String::with_capacity(RANDOM_CHARS);
    let mut buf = [0u8; 64];
    while random.len() < RANDOM_CHARS {
        fill(&mut buf);
        // Rejection sampling keeps every character equally likely.
        for b in buf.iter().filter(|b| **b < 248) {
            if random.len() == RANDOM_CHARS {
                break;
            }
            random.push(char::from(ALPHABET[usize::from(*b % 62)]));
        }
    }
    let checksum = checksum(random.as_bytes());
    format!("{PREFIX}{random}{checksum}")
}

/// Checks shape and checksum: what can be known without asking the service.
pub fn check_format(key: &str) -> Result<(), ApiKeyFormatError> {
    let body = key.strip_prefix(PREFIX).ok_or(ApiKeyFormatError::WrongShape)?;
    if key.len() != LENGTH || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiKeyFormatError::WrongShape);
    }
    let (random, sum) = body.split_at(RANDOM_CHARS);
    if checksum(random.as_bytes()) != sum {
        return Err(ApiKeyFormatError::BadChecksum);
    }
    Ok(())
}

/// The part of a key that may be displayed (`sek_` + 8 characters).
pub fn display_prefix(key: &str) -> &str {
    key.get(..DISPLAY_PREFIX).unwrap_or(PREFIX)
}

fn checksum(data: &[u8]) -> String {
    let mut n = crc32(data);
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (!(crc & 1)).wrapping_add(1));
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter_fill() -> impl FnMut(&mut [u8]) {
        let mut n = 0u8;
        move |buf: &mut [u8]| {
            for b in buf {
                *b = n;
                n = n.wrapping_add(37);
            }
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn generated_keys_pass_and_have_the_documented_shape() {
        let key = generate(counter_fill());
        assert_eq!(key.len(), LENGTH);
        assert!(key.starts_with("sek_"));
        assert_eq!(check_format(&key), Ok(()));
        assert_eq!(display_prefix(&key).len(), 12);
    }

    #[test]
    fn any_single_character_change_is_caught() {
        let key = generate(counter_fill());
        for i in PREFIX.len()..key.len() {
            let mut bytes = key.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert_eq!(check_format(&changed), Err(ApiKeyFormatError::BadChecksum), "position {i}");
        }
    }

    #[test]
    fn wrong_shapes_are_refused() {
        let key = generate(counter_fill());
        assert_eq!(check_format(&key[1..]), Err(ApiKeyFormatError::WrongShape));
        assert_eq!(check_format(&format!("{key}x")), Err(ApiKeyFormatError::WrongShape));
        assert_eq!(check_format(&key.replace("sek_", "sk_x")), Err(ApiKeyFormatError::WrongShape));
        assert_eq!(check_format(&format!("{}-{}", &key[..10], &key[11..])), Err(ApiKeyFormatError::WrongShape));
        assert_eq!(check_format(""), Err(ApiKeyFormatError::WrongShape));
    }
}

/// What the filter sends to [`crate::paths::API_KEY_VERIFY`] the first time it
/// sees a key, and again when its cached answer runs out. A POST body, so the
/// key never appears in a URL or an access log.
pub mod verify {
    use serde::de::Error as _;
    use serde::ser::SerializeStruct;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// `{"api_key":"sek_..."}`
    #[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct VerifyRequest {
        pub api_key: String,
    }

    impl core::fmt::Debug for VerifyRequest {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("VerifyRequest").field("api_key", &super::display_prefix(&self.api_key)).finish()
        }
    }

    /// The service's answer. Both outcomes may be cached for `cache_seconds`:
    /// that is how long a revocation may take to reach the filter, and a
    /// cached "no" is what keeps guessing from reaching the service at all.
    ///
    /// ```json
    /// {"valid":true,"key_id":"ak_…","instances":["demo"],"scope":"mcp:read","expires_at":null,"cache_seconds":30}
    /// {"valid":false,"reason":"unknown","cache_seconds":30}
    /// ```
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct VerifyResponse {
        pub verdict: Verdict,
        /// Never beyond the key's `expires_at` (or a scheduled revocation).
        pub cache_seconds: u32,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Verdict {
        Valid(ValidKey),
        Invalid(InvalidReason),
    }

    /// What a valid key may do.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ValidKey {
        /// The key's public id (for logs and the `x-sekisho-subject` header).
        pub key_id: String,
        /// Instance ids the key may be used at; anywhere else is a 403.
        pub instances: Vec<String>,
        /// Space-separated scopes (RFC 6749 §3.3), as `ScopeSet::parse` reads them.
        pub scope: String,
        /// Unix seconds; `None`: the key does not expire.
        pub expires_at: Option<i64>,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum InvalidReason {
        /// Well-formed, but no such key.
        Unknown,
        Revoked,
        Expired,
        /// Refused by [`super::check_format`], without a lookup.
        Malformed,
    }

    impl InvalidReason {
        pub fn as_str(self) -> &'static str {
            match self {
                InvalidReason::Unknown => "unknown",
                InvalidReason::Revoked => "revoked",
                InvalidReason::Expired => "expired",
                InvalidReason::Malformed => "malformed",
            }
        }
    }

    impl VerifyResponse {
        pub fn is_valid(&self) -> bool {
            matches!(self.verdict, Verdict::Valid(_))
        }
    }

    // By hand rather than derived: `valid` is a boolean discriminator, which
    // serde's tagged enums cannot express, and a valid answer always carries
    // `expires_at` (as null when the key does not expire).
    impl Serialize for VerifyResponse {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            match &self.verdict {
                Verdict::Valid(key) => {
                    let mut s = serializer.serialize_struct("VerifyResponse", 6)?;
                    s.serialize_field("valid", &true)?;
                    s.serialize_field("key_id", &key.key_id)?;
                    s.serialize_field("instances", &key.instances)?;
                    s.serialize_field("scope", &key.scope)?;
                    s.serialize_field("expires_at", &key.expires_at)?;
                    s.serialize_field("cache_seconds", &self.cache_seconds)?;
                    s.end()
                }
                Verdict::Invalid(reason) => {
                    let mut s = serializer.serialize_struct("VerifyResponse", 3)?;
                    s.serialize_field("valid", &false)?;
                    s.serialize_field("reason", reason)?;
                    s.serialize_field("cache_seconds", &self.cache_seconds)?;
                    s.end()
                }
            }
        }
    }

    /// Every field either outcome may carry; which ones must be present
    /// depends on `valid`.
    #[derive(Deserialize)]
    struct Wire {
        valid: bool,
        key_id: Option<String>,
        instances: Option<Vec<String>>,
        scope: Option<String>,
        expires_at: Option<i64>,
        reason: Option<InvalidReason>,
        cache_seconds: u32,
    }

    impl<'de> Deserialize<'de> for VerifyResponse {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let wire = Wire::deserialize(deserializer)?;
            let verdict = if wire.valid {
                Verdict::Valid(ValidKey {
                    key_id: wire.key_id.ok_or_else(|| D::Error::missing_field("key_id"))?,
                    instances: wire.instances.ok_or_else(|| D::Error::missing_field("instances"))?,
                    scope: wire.scope.ok_or_else(|| D::Error::missing_field("scope"))?,
                    expires_at: wire.expires_at,
                })
            } else {
                Verdict::Invalid(wire.reason.ok_or_else(|| D::Error::missing_field("reason"))?)
            };
            Ok(VerifyResponse { verdict, cache_seconds: wire.cache_seconds })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn valid_answers_have_the_documented_shape() {
            let answer = VerifyResponse {
                verdict: Verdict::Valid(ValidKey {
                    key_id: "ak_1".into(),
                    instances: vec!["demo".into()],
                    scope: "mcp:read".into(),
                    expires_at: None,
                }),
                cache_seconds: 30,
            };
            let text = serde_json::to_string(&answer).unwrap();
            assert_eq!(
                text,
                r#"{"valid":true,"key_id":"ak_1","instances":["demo"],"scope":"mcp:read","expires_at":null,"cache_seconds":30}"#
            );
            assert_eq!(serde_json::from_str::<VerifyResponse>(&text).unwrap(), answer);
        }

        #[test]
        fn invalid_answers_have_the_documented_shape() {
            let answer = VerifyResponse { verdict: Verdict::Invalid(InvalidReason::Revoked), cache_seconds: 7 };
            let text = serde_json::to_string(&answer).unwrap();
            assert_eq!(text, r#"{"valid":false,"reason":"revoked","cache_seconds":7}"#);
            assert_eq!(serde_json::from_str::<VerifyResponse>(&text).unwrap(), answer);
        }

        #[test]
        fn incomplete_answers_are_refused() {
            for text in [
                r#"{"valid":true,"instances":["demo"],"scope":"mcp:read","cache_seconds":1}"#,
                r#"{"valid":true,"key_id":"k","scope":"mcp:read","cache_seconds":1}"#,
                r#"{"valid":false,"cache_seconds":1}"#,
                r#"{"valid":false,"reason":"stolen","cache_seconds":1}"#,
                r#"{"valid":false,"reason":"unknown"}"#,
                r#"{"valid":"yes","reason":"unknown","cache_seconds":1}"#,
            ] {
                assert!(serde_json::from_str::<VerifyResponse>(text).is_err(), "{text}");
            }
        }

        #[test]
        fn requests_never_show_the_key_in_debug_output() {
            let request = VerifyRequest { api_key: "sek_ABCDEFGHsecretsecretsecret".into() };
            let shown = format!("{request:?}");
            assert!(shown.contains("sek_ABCDEFGH") && !shown.contains("secret"));
            assert_eq!(serde_json::to_string(&request).unwrap(), r#"{"api_key":"sek_ABCDEFGHsecretsecretsecret"}"#);
        }
    }
}
