//! Comparison of secrets without leaking, through timing, how much of a guess was right.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `presented` equals `expected`. Both are hashed first so that the
/// comparison runs over equal lengths and the time taken does not reveal the
/// length of the secret either.
pub fn secrets_equal(presented: &[u8], expected: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(presented), Sha256::digest(expected));
    a.ct_eq(&b).into()
}

#[cfg(test)]
mod tests {
    use super::secrets_equal;

    #[test]
    fn equal_only_when_identical() {
        assert!(secrets_equal(b"s3cret", b"s3cret"));
        assert!(!secrets_equal(b"s3cre", b"s3cret"));
        assert!(!secrets_equal(b"", b"s3cret"));
    }
}
