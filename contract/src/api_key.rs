//! The API key format (SPEC K1), shared by the service that issues keys and the
//! filter that refuses malformed ones without any lookup.
//!
//! `sek_` + 40 base62 characters of randomness (≈238 bits) + 6 base62
//! characters of CRC-32 over the random part. The prefix makes leaked keys easy
//! to scan for; the checksum lets the filter refuse typos and guesses locally.
//! The checksum is not a secret and proves nothing about authenticity: a key is
//! valid only if the service knows its keyed hash.

pub const PREFIX: &str = "sek_";
const RANDOM_CHARS: usize = 40;
const CHECKSUM_CHARS: usize = 6;
pub const LENGTH: usize = PREFIX.len() + RANDOM_CHARS + CHECKSUM_CHARS;
/// How much of a key may be shown in listings and audit rows to tell keys apart.
pub const DISPLAY_PREFIX: usize = PREFIX.len() + 8;

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
