//! Randomness from the operating system, for keys, nonces and identifiers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

pub fn bytes<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|_| RandomError)?;
    Ok(out)
}

/// Fills `buf` (for generators that draw as much as they need, such as API keys).
pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|_| RandomError)
}

/// A 128-bit random identifier, base64url: unguessable, URL- and header-safe
/// (token `jti`s and, later, client ids).
pub fn identifier() -> Result<String, RandomError> {
    Ok(URL_SAFE_NO_PAD.encode(bytes::<16>()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_distinct_and_22_characters() {
        let (a, b) = (super::identifier().unwrap(), super::identifier().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
    }
}
