//! Cryptographic building blocks of the service: encryption of secrets at rest,
//! the master keys they are encrypted with (and their rotation), keyed hashes
//! of the secrets we only need to recognise, randomness and constant-time checks.
//! Token signing is not here: it lives with the keys (`crate::keys`) and the
//! token format (`sekisho_contract::jws`).

pub mod compare;
pub mod field;
pub mod hash_key;
pub mod key_provider;
pub mod master_key;
pub mod random;
pub mod reencrypt;
pub mod secret_hash;
