//! Arbitrary bytes as a Bearer token: parsing and verification must answer, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p256::ecdsa::SigningKey;
use sekisho_contract::claims::Expectations;
use sekisho_contract::jwk::{Jwk, Jwks};
use sekisho_filter::keys::KeySet;
use sekisho_filter::token::{self, PureRust};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let key = SigningKey::from_slice(&[1u8; 32]).expect("fixed key");
    let jwks = Jwks { keys: vec![Jwk::es256(key.verifying_key())] };
    let keys = KeySet::from_jwks(&serde_json::to_vec(&jwks).expect("jwks")).expect("keys");
    let expect = Expectations { issuer: "http://127.0.0.1:8080", audience: "http://127.0.0.1:8080/mcp/demo", now: 1_800_000_000, leeway: 30 };
    let _ = token::verify(text, &keys, &PureRust, &expect, 8192);
    let _ = KeySet::from_jwks(data);
});
