//! Removes exports from a WebAssembly module, so Envoy skips callbacks the
//! filter does not implement.
//!
//! The proxy-wasm Rust SDK exports every `proxy_on_*` callback whether the
//! filter overrides it or not, and Envoy's host (proxy-wasm-cpp-host) enters
//! the VM for every callback the module exports: on response headers, response
//! body and the access log of every request, only to run the SDK's empty
//! defaults. A callback the module does not export is skipped by the host
//! without entering V8 (`ContextBase::onResponseHeaders` returns `Continue`
//! when `on_response_headers_` is null). Entering V8 is most of what a cached
//! request costs, so the deployable module leaves those exports out.
//!
//! Only the export section changes; the functions stay in the module,
//! unreachable from the host. Everything else is copied byte for byte.

use anyhow::{Result, bail};

const MAGIC_AND_VERSION: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const EXPORT_SECTION: u8 = 7;

/// `module` without the exports named in `remove`. Names that are not exported
/// are ignored, so applying it twice gives the same module.
pub fn without(module: &[u8], remove: &[&str]) -> Result<Vec<u8>> {
    if module.len() < 8 || module[..8] != MAGIC_AND_VERSION {
        bail!("not a WebAssembly 1.0 module");
    }
    let mut out = module[..8].to_vec();
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        let (size, size_len) = read_u32(module, at + 1)?;
        let start = at + 1 + size_len;
        let end = start.checked_add(size as usize).filter(|&e| e <= module.len());
        let Some(end) = end else { bail!("section {id} at byte {at} runs past the end of the module") };
        if id == EXPORT_SECTION {
            let payload = filter_exports(&module[start..end], remove)?;
            out.push(id);
            write_u32(&mut out, u32::try_from(payload.len())?);
            out.extend_from_slice(&payload);
        } else {
            out.extend_from_slice(&module[at..end]);
        }
        at = end;
    }
    Ok(out)
}

/// The names a module exports, in order.
pub fn names(module: &[u8]) -> Result<Vec<String>> {
    let mut at = 8;
    while at < module.len() {
        let id = module[at];
        let (size, size_len) = read_u32(module, at + 1)?;
        let start = at + 1 + size_len;
        let end = start + size as usize;
        if end > module.len() {
            bail!("section {id} runs past the end of the module");
        }
        if id == EXPORT_SECTION {
            return Ok(entries(&module[start..end])?.into_iter().map(|e| e.name.to_owned()).collect());
        }
        at = end;
    }
    Ok(Vec::new())
}

struct Entry<'a> {
    name: &'a str,
    /// The entry's bytes as they appear in the section (name, kind, index).
    raw: &'a [u8],
}

fn entries(section: &[u8]) -> Result<Vec<Entry<'_>>> {
    let (count, mut at) = read_u32(section, 0)?;
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let begin = at;
        let (name_len, n) = read_u32(section, at)?;
        let name_start = at + n;
        let name_end = name_start + name_len as usize;
        let Some(name) = section.get(name_start..name_end) else {
            bail!("export name runs past its section")
        };
        let name = std::str::from_utf8(name)?;
        // kind (one byte), then the index as LEB128.
        let (_, index_len) = read_u32(section, name_end + 1)?;
        at = name_end + 1 + index_len;
        entries.push(Entry { name, raw: &section[begin..at] });
    }
    if at != section.len() {
        bail!("the export section has {} trailing bytes", section.len() - at);
    }
    Ok(entries)
}

fn filter_exports(section: &[u8], remove: &[&str]) -> Result<Vec<u8>> {
    let kept: Vec<Entry<'_>> = entries(section)?.into_iter().filter(|e| !remove.contains(&e.name)).collect();
    let mut out = Vec::with_capacity(section.len());
    write_u32(&mut out, u32::try_from(kept.len())?);
    for entry in kept {
        out.extend_from_slice(entry.raw);
    }
    Ok(out)
}

/// An unsigned LEB128 `u32` at `at`: its value and how many bytes it took.
fn read_u32(bytes: &[u8], at: usize) -> Result<(u32, usize)> {
    let mut value: u32 = 0;
    for i in 0..5 {
        let Some(&byte) = bytes.get(at + i) else { bail!("truncated number at byte {at}") };
        value |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    bail!("number at byte {at} is longer than 5 bytes")
}

fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with a custom section, a type section and exports `a`, `bb`, `c`.
    fn module() -> Vec<u8> {
        let mut m = MAGIC_AND_VERSION.to_vec();
        m.extend([0, 4, 1, b'x', 0xde, 0xad]); // custom section "x"
        m.extend([1, 4, 1, 0x60, 0, 0]); // one type: [] -> []
        let mut exports = vec![3];
        for (name, kind, index) in [("a", 0u8, 0u8), ("bb", 0, 1), ("c", 2, 0)] {
            exports.push(name.len() as u8);
            exports.extend(name.bytes());
            exports.extend([kind, index]);
        }
        m.push(EXPORT_SECTION);
        m.push(exports.len() as u8);
        m.extend(exports);
        m
    }

    #[test]
    fn removes_only_the_named_exports_and_keeps_the_rest_byte_for_byte() {
        let original = module();
        let stripped = without(&original, &["bb", "not-there"]).unwrap();
        assert_eq!(names(&stripped).unwrap(), ["a", "c"]);
        assert_eq!(stripped[..20], original[..20], "sections before the exports are copied");
        assert_eq!(without(&stripped, &["bb"]).unwrap(), stripped, "applying it twice changes nothing");
        assert_eq!(without(&original, &[]).unwrap(), original);
    }

    #[test]
    fn refuses_what_is_not_a_module() {
        assert!(without(b"\0asm\x02\0\0\0", &[]).is_err());
        let mut truncated = module();
        truncated.truncate(truncated.len() - 2);
        assert!(without(&truncated, &["a"]).is_err());
    }

    #[test]
    fn numbers_round_trip() {
        for n in [0, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut buf = Vec::new();
            write_u32(&mut buf, n);
            assert_eq!(read_u32(&buf, 0).unwrap(), (n, buf.len()));
        }
    }
}
