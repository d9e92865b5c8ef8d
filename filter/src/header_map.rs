//! The proxy-wasm ABI's serialized header map, read in place.
//!
//! Envoy hands the whole request header map over in one call as
//! `count, (name_len, value_len) × count, (name \0 value \0) × count`, all
//! lengths little-endian `u32`. The SDK turns that into a `Vec` of owned
//! `String`s and `Vec`s: two allocations per header on every request, and a
//! panic on a name that is not UTF-8. Here the buffer Envoy filled is only
//! checked once and then borrowed from.

/// A request's headers, borrowed from the buffer Envoy filled.
#[derive(Debug, Clone, Copy)]
pub struct HeaderMap<'a> {
    raw: &'a [u8],
    count: usize,
}

/// Why a buffer is not a header map; Envoy never sends one, but the filter
/// must not trust it blindly either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

fn u32_at(raw: &[u8], at: usize) -> Option<usize> {
    let bytes: [u8; 4] = raw.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(bytes)).ok()
}

impl<'a> HeaderMap<'a> {
    /// Checks every length against the buffer, so iteration needs no checks.
    /// An empty buffer is an empty map (Envoy sends nothing for no headers).
    pub fn parse(raw: &'a [u8]) -> Result<Self, Malformed> {
        if raw.is_empty() {
            return Ok(HeaderMap { raw, count: 0 });
        }
        let count = u32_at(raw, 0).ok_or(Malformed)?;
        let mut data = count.checked_mul(8).and_then(|n| n.checked_add(4)).ok_or(Malformed)?;
        for i in 0..count {
            let name = u32_at(raw, 4 + i * 8).ok_or(Malformed)?;
            let value = u32_at(raw, 8 + i * 8).ok_or(Malformed)?;
            // Each of name and value is followed by a NUL.
            let end = data.checked_add(name).and_then(|n| n.checked_add(value)).and_then(|n| n.checked_add(2));
            data = end.filter(|&e| e <= raw.len()).ok_or(Malformed)?;
        }
        Ok(HeaderMap { raw, count })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> Pairs<'a> {
        Pairs { raw: self.raw, index: 0, count: self.count, data: 4 + self.count * 8 }
    }

    /// The first value of `name` (lower case, as Envoy keeps names).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter().find(|(n, _)| *n == name.as_bytes()).map(|(_, v)| v)
    }
}

/// The `(name, value)` pairs of a [`HeaderMap`], in Envoy's order.
#[derive(Debug, Clone)]
pub struct Pairs<'a> {
    raw: &'a [u8],
    index: usize,
    count: usize,
    data: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        // `parse` checked every length and offset below.
        let name_len = u32_at(self.raw, 4 + self.index * 8)?;
        let value_len = u32_at(self.raw, 8 + self.index * 8)?;
        let name = self.raw.get(self.data..self.data + name_len)?;
        let value_at = self.data + name_len + 1;
        let value = self.raw.get(value_at..value_at + value_len)?;
        self.data = value_at + value_len + 1;
        self.index += 1;
        Some((name, value))
    }
}

/// Serializes `pairs` into `out` (cleared first) in the ABI's layout: the
/// maps Envoy would hand over, for tests. The filter itself changes headers
/// with edits (`upstream.rs`), never by writing a whole map back.
#[cfg(test)]
pub fn write<'p>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'p [u8], &'p [u8])> + Clone) {
    out.clear();
    let (count, bytes) = pairs.clone().fold((0usize, 0usize), |(c, b), (n, v)| (c + 1, b + n.len() + v.len() + 2));
    out.reserve(4 + count * 8 + bytes);
    // Header names and values are bounded by Envoy's header limits, far below 4 GiB.
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len32(count));
    for (name, value) in pairs.clone() {
        out.extend_from_slice(&len32(name.len()));
        out.extend_from_slice(&len32(value.len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serialized(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
        out
    }

    #[test]
    fn the_layout_is_the_abis() {
        // Two headers: count, both length pairs, then each name and value NUL-terminated.
        let raw = serialized(&[(":path", "/mcp/x"), ("a", "")]);
        let mut expected = vec![2, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(b":path\0/mcp/x\0a\0\0");
        assert_eq!(raw, expected);
    }

    #[test]
    fn reads_back_what_was_written_in_order() {
        let pairs = [(":method", "POST"), (":path", "/mcp/demo"), ("authorization", "Bearer x"), ("empty", "")];
        let raw = serialized(&pairs);
        let map = HeaderMap::parse(&raw).unwrap();
        assert_eq!(map.len(), 4);
        let read: Vec<(&[u8], &[u8])> = map.iter().collect();
        let expected: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
        assert_eq!(read, expected);
        assert_eq!(map.get("authorization"), Some(&b"Bearer x"[..]));
        assert_eq!(map.get("empty"), Some(&b""[..]));
        assert_eq!(map.get("x-api-key"), None);
    }

    #[test]
    fn an_empty_buffer_is_an_empty_map() {
        let map = HeaderMap::parse(&[]).unwrap();
        assert!(map.is_empty());
        assert_eq!(map.iter().count(), 0);
        assert_eq!(serialized(&[]), vec![0, 0, 0, 0]);
    }

    #[test]
    fn values_are_bytes_not_text() {
        let mut raw = Vec::new();
        write(&mut raw, [(&b"x-bin"[..], &[0xff, 0x00, 0xfe][..])].into_iter());
        assert_eq!(HeaderMap::parse(&raw).unwrap().get("x-bin"), Some(&[0xff, 0x00, 0xfe][..]));
    }

    #[test]
    fn refuses_every_truncation_and_lying_lengths() {
        let raw = serialized(&[(":path", "/mcp/demo"), ("authorization", "Bearer abc")]);
        for cut in 1..raw.len() {
            assert_eq!(HeaderMap::parse(&raw[..cut]).map(|m| m.len()), Err(Malformed), "cut at {cut}");
        }
        let mut huge_count = raw.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::parse(&huge_count).map(|m| m.len()), Err(Malformed));
        let mut huge_value = raw;
        huge_value[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::parse(&huge_value).map(|m| m.len()), Err(Malformed));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_consistent_buffers(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            if let Ok(map) = HeaderMap::parse(&raw) {
                let pairs: Vec<_> = map.iter().collect();
                proptest::prop_assert_eq!(pairs.len(), map.len());
            }
        }

        #[test]
        fn round_trips(pairs in proptest::collection::vec(("[a-z:-]{1,12}", "[ -~]{0,40}"), 0..12)) {
            let raw = serialized(&pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect::<Vec<_>>());
            let map = HeaderMap::parse(&raw).unwrap();
            let read: Vec<(Vec<u8>, Vec<u8>)> = map.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
            let expected: Vec<(Vec<u8>, Vec<u8>)> = pairs.iter().map(|(n, v)| (n.clone().into_bytes(), v.clone().into_bytes())).collect();
            proptest::prop_assert_eq!(read, expected);
        }
    }
}
