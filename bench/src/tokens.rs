//! Signing material for the benchmark: one ES256 key, given to the service as
//! `JWT_PRIVATE_KEY` and to `jwt_authn` as an inline JWKS, and tokens signed
//! with it here (many of them, for the cold path).

use std::ops::Range;

use anyhow::{Context, Result};
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use sekisho_contract::claims::{AccessTokenClaims, Audience};
use sekisho_contract::jwk::{Jwk, Jwks, thumbprint};
use sekisho_contract::jws;

pub struct Signer {
    key: SigningKey,
    kid: String,
}

impl Signer {
    pub fn generate() -> Result<Signer> {
        let mut seed = [0u8; 32];
        loop {
            getrandom(&mut seed)?;
            if let Ok(key) = SigningKey::from_slice(&seed) {
                let kid = thumbprint(key.verifying_key());
                return Ok(Signer { key, kid });
            }
        }
    }

    pub fn private_pem(&self) -> Result<String> {
        Ok(self.key.to_pkcs8_pem(LineEnding::LF).context("encoding the bench key")?.to_string())
    }

    pub fn jwks_json(&self) -> Result<String> {
        Ok(serde_json::to_string(&Jwks { keys: vec![Jwk::es256(self.key.verifying_key())] })?)
    }

    /// A token for `audience`, valid for an hour; `n` makes each one distinct.
    pub fn token(&self, issuer: &str, audience: &str, now: i64, n: u64) -> Result<String> {
        let claims = AccessTokenClaims {
            iss: issuer.to_owned(),
            sub: format!("bench-user-{n}"),
            aud: Audience::One(audience.to_owned()),
            exp: now + 3600,
            iat: now - 5,
            nbf: None,
            jti: format!("bench-{n}"),
            client_id: "bench".into(),
            scope: "mcp:read mcp:write".into(),
        };
        jws::sign_es256(&claims, jws::ACCESS_TOKEN_TYP, &self.kid, &self.key).context("signing a bench token")
    }

    /// The distinct tokens numbered `numbers` (disjoint ranges, disjoint
    /// tokens), signed on every core.
    pub fn tokens(&self, issuer: &str, audience: &str, now: i64, numbers: Range<u64>) -> Result<Vec<String>> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
        let (first, count) = (numbers.start, numbers.end.saturating_sub(numbers.start));
        let chunk = count.div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (t * chunk..((t + 1) * chunk).min(count))
                            .map(|n| self.token(issuer, audience, now, first + n))
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(count as usize);
            for h in handles {
                all.extend(h.join().map_err(|_| anyhow::anyhow!("a signing thread panicked"))??);
            }
            Ok(all)
        })
    }
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf).context("reading /dev/urandom")
}
