//! The message format of Envoy's `verify_signature` foreign function, which
//! checks a signature with Envoy's own BoringSSL instead of inside the wasm VM.
//!
//! ECDSA verification in V8 costs about a millisecond per token; natively it is
//! tens of microseconds, which is what lets a fresh token cost no more than in
//! Envoy's native `jwt_authn`. The arguments are a protobuf message
//! (`source/extensions/common/wasm/ext/verify_signature.proto` in Envoy):
//! hand-encoded here, five fields are not worth a protobuf dependency.

/// `VerifySignatureArguments { hash_function = 1; public_key (DER) = 2; signature = 3; text = 4 }`.
pub fn encode_verify_request(hash: &str, spki_der: &[u8], der_signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hash.len() + spki_der.len() + der_signature.len() + text.len() + 16);
    field(&mut out, 1, hash.as_bytes());
    field(&mut out, 2, spki_der);
    field(&mut out, 3, der_signature);
    field(&mut out, 4, text);
    out
}

fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2); // wire type 2: length-delimited
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads `VerifySignatureResult { bool result = 1; string error = 2; }`: only
/// `result` matters, and a message without it means `false` (proto3 default).
pub fn decode_verify_result(bytes: &[u8]) -> Option<bool> {
    let mut i = 0;
    let mut result = false;
    while i < bytes.len() {
        let tag = bytes[i];
        i += 1;
        match (tag >> 3, tag & 7) {
            (1, 0) => {
                let (v, n) = read_varint(bytes.get(i..)?)?;
                result = v != 0;
                i += n;
            }
            (_, 0) => i += read_varint(bytes.get(i..)?)?.1,
            (_, 2) => {
                let (len, n) = read_varint(bytes.get(i..)?)?;
                i = i.checked_add(n)?.checked_add(usize::try_from(len).ok()?)?;
                if i > bytes.len() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(result)
}

fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// A raw JWS ES256 signature (r ‖ s) as the DER `ECDSA-Sig-Value` BoringSSL expects.
pub fn ecdsa_der(raw: &[u8; 64]) -> Vec<u8> {
    let r = der_integer(&raw[..32]);
    let s = der_integer(&raw[32..]);
    let mut out = Vec::with_capacity(2 + r.len() + s.len());
    out.push(0x30);
    out.push((r.len() + s.len()) as u8); // at most 2 × 35 bytes: short form
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    out
}

fn der_integer(big_endian: &[u8]) -> Vec<u8> {
    let start = big_endian.iter().position(|b| *b != 0).unwrap_or(big_endian.len() - 1);
    let digits = &big_endian[start..];
    let pad = digits[0] & 0x80 != 0;
    let mut out = Vec::with_capacity(digits.len() + 3);
    out.push(0x02);
    out.push((digits.len() + usize::from(pad)) as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};

    #[test]
    fn der_signature_matches_the_reference_encoding() {
        let key = SigningKey::from_slice(&[9u8; 32]).unwrap();
        for msg in [&b"a"[..], b"b", b"c", b"header.payload", b"e", b"f", b"g", b"h"] {
            let sig: Signature = key.sign(msg);
            let raw: [u8; 64] = sig.to_bytes().into();
            assert_eq!(ecdsa_der(&raw), sig.to_der().as_bytes());
        }
    }

    #[test]
    fn der_integers_strip_zeros_and_keep_the_sign_positive() {
        assert_eq!(der_integer(&[0, 0, 1]), vec![2, 1, 1]);
        assert_eq!(der_integer(&[0, 0x80]), vec![2, 2, 0, 0x80]);
        assert_eq!(der_integer(&[0, 0, 0]), vec![2, 1, 0]);
    }

    #[test]
    fn request_fields_are_length_delimited_in_order() {
        let msg = encode_verify_request("sha256", &[1, 2], &[3], &[4u8; 200]);
        assert_eq!(&msg[..8], &[0x0a, 6, b's', b'h', b'a', b'2', b'5', b'6']);
        assert_eq!(&msg[8..12], &[0x12, 2, 1, 2]);
        assert_eq!(&msg[12..15], &[0x1a, 1, 3]);
        assert_eq!(&msg[15..18], &[0x22, 0xc8, 0x01]);
        assert_eq!(msg.len(), 18 + 200);
    }

    #[test]
    fn results_decode_and_garbage_is_not_success() {
        assert_eq!(decode_verify_result(&[0x08, 1]), Some(true));
        assert_eq!(decode_verify_result(&[0x08, 0, 0x12, 3, b'b', b'a', b'd']), Some(false));
        assert_eq!(decode_verify_result(&[0x12, 2, b'n', b'o']), Some(false));
        assert_eq!(decode_verify_result(&[]), Some(false));
        assert_eq!(decode_verify_result(&[0x12, 50, 1]), None);
        assert_eq!(decode_verify_result(&[0x0d, 1, 2, 3, 4]), None);
        assert_eq!(decode_verify_result(&[0x08, 0xff]), None);
    }
}
