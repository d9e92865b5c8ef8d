//! The client address of a request, for audit rows and per-IP rate limits.
//!
//! The peer of a connection is the client unless it is a trusted proxy
//! (`SEKISHO_TRUSTED_PROXIES`, loopback by default: Envoy on the same host).
//! Then the client is read from `X-Forwarded-For`, right to left, skipping
//! trusted proxies: Envoy appends the address it saw, so entries to the left
//! of it are whatever the client wrote and are never believed. Absent when
//! the router is driven in process (tests) with no peer address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};

use crate::app::App;

/// Loopback, IPv4 and IPv6.
pub const DEFAULT_TRUSTED_PROXIES: &str = "127.0.0.0/8,::1/128";

pub struct ClientIp(pub Option<String>);

impl FromRequestParts<App> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let ip = of_request(&parts.extensions, &parts.headers, &app.config.trusted_proxies);
        Ok(ClientIp(ip.map(|ip| ip.to_string())))
    }
}

/// The client address of a request whose extensions hold the connection's peer.
pub fn of_request(extensions: &Extensions, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<IpAddr> {
    let ConnectInfo(peer) = extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(resolve(peer.ip(), headers, trusted))
}

fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            // Garbage can only come from beyond the last proxy we trust.
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// Networks whose connections are proxies that append the client address to
/// `X-Forwarded-For` (`SEKISHO_TRUSTED_PROXIES`: addresses or CIDRs, comma
/// separated; `none` trusts no one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(TrustedProxies(Vec::new()));
        }
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((addr, bits)) => (addr, Some(bits)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| format!("`{item}` is not an IP address or CIDR"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("`{item}`: bad prefix"))?,
            };
            nets.push((addr, bits));
        }
        Ok(TrustedProxies(nets))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u128::from(net.to_bits()), u128::from(ip.to_bits()), 32, *bits)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_eq(net.to_bits(), ip.to_bits(), 128, *bits),
            _ => false,
        })
    }
}

fn prefix_eq(a: u128, b: u128, width: u8, bits: u8) -> bool {
    let shift = u32::from(width - bits);
    bits == 0 || (a >> shift) == (b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn behind_a_trusted_proxy_the_address_it_appended_is_the_client() {
        let trusted = TrustedProxies::parse(DEFAULT_TRUSTED_PROXIES).unwrap();
        let peer = ip("127.0.0.1");
        assert_eq!(resolve(peer, &headers(&["203.0.113.7"]), &trusted), ip("203.0.113.7"));
        // What the client wrote to the left of Envoy's entry is not believed.
        assert_eq!(resolve(peer, &headers(&["198.51.100.1, 203.0.113.7"]), &trusted), ip("203.0.113.7"));
        assert_eq!(resolve(peer, &headers(&["198.51.100.1", "203.0.113.7"]), &trusted), ip("203.0.113.7"));
        assert_eq!(resolve(peer, &headers(&["garbage, 127.0.0.1"]), &trusted), ip("127.0.0.1"));
        assert_eq!(resolve(peer, &headers(&[]), &trusted), peer);
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted = TrustedProxies::parse(DEFAULT_TRUSTED_PROXIES).unwrap();
        assert_eq!(resolve(ip("192.0.2.9"), &headers(&["203.0.113.7"]), &trusted), ip("192.0.2.9"));
        let none = TrustedProxies::parse("none").unwrap();
        assert_eq!(resolve(ip("127.0.0.1"), &headers(&["203.0.113.7"]), &none), ip("127.0.0.1"));
    }

    #[test]
    fn networks_parse_and_match() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1, fd00::/8").unwrap();
        assert!(t.contains(ip("10.200.1.1")) && t.contains(ip("192.0.2.1")) && t.contains(ip("fd12::1")));
        assert!(t.contains(ip("::ffff:10.0.0.1")));
        assert!(!t.contains(ip("192.0.2.2")) && !t.contains(ip("11.0.0.1")) && !t.contains(ip("fe80::1")));
        for bad in ["10.0.0.0/33", "host.example", "::1/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }
}
