//! Random bytes from the kernel, for admin tokens and throw-away keys.

use std::io::Read;

use anyhow::{Context, Result};

pub fn bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut out)).context("cannot read /dev/urandom")?;
    Ok(out)
}

/// 32 random bytes as 64 hex digits.
pub fn hex_token() -> Result<String> {
    Ok(bytes::<32>()?.iter().map(|b| format!("{b:02x}")).collect())
}
