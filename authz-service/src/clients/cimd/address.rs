//! Which IP addresses a Client ID Metadata Document may be fetched from: the
//! public internet only (SSRF guard, draft-ietf-oauth-client-id-metadata-document
//! §8.6). Loopback can be allowed for tests; nothing else private ever is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether fetching from `ip` is allowed.
pub fn is_allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    if ip.is_loopback() || ip.to_canonical().is_loopback() {
        return allow_loopback;
    }
    is_public(ip)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (a == 100 && (64..=127).contains(&b))
        // 192.0.0.0/24, IETF protocol assignments.
        || (a == 192 && b == 0 && c == 0)
        // 198.18.0.0/15, benchmarking.
        || (a == 198 && (b == 18 || b == 19))
        // 240.0.0.0/4, reserved.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    // IPv4-mapped (::ffff:a.b.c.d) and the other embeddings reach IPv4 hosts.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded_v4 = || {
        let [.., a, b] = segments;
        Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8)
    };
    // 64:ff9b::/96, NAT64.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4());
    }
    // 2002::/16, 6to4: the IPv4 address is in segments 1 and 2.
    if segments[0] == 0x2002 {
        let v4 =
            Ipv4Addr::new((segments[1] >> 8) as u8, segments[1] as u8, (segments[2] >> 8) as u8, segments[2] as u8);
        return is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // fc00::/7, unique local.
        || (segments[0] & 0xfe00) == 0xfc00
        // fe80::/10, link local; fec0::/10, the deprecated site local.
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
        // 2001:db8::/32, documentation.
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        // ::/96, IPv4-compatible (deprecated).
        || segments[..6] == [0, 0, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn public_addresses_are_allowed() {
        for a in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "2001:4860::8888"] {
            assert!(is_allowed(ip(a), false), "{a}");
        }
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:db8::1",
        ] {
            assert!(!is_allowed(ip(a), false), "{a}");
        }
    }

    #[test]
    fn loopback_only_when_allowed_and_never_other_private_ranges() {
        assert!(is_allowed(ip("127.0.0.1"), true));
        assert!(is_allowed(ip("::1"), true));
        assert!(is_allowed(ip("::ffff:127.0.0.1"), true));
        assert!(!is_allowed(ip("10.0.0.1"), true));
        assert!(!is_allowed(ip("169.254.169.254"), true));
    }
}
