//! Where a subscription delivers: a URL that parses, and the rule that decides whether an address
//! it resolves to may be connected to (the SSRF guard). The dispatcher resolves the host, asks
//! [`Destination::check`] for each address, and connects to a checked address only.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest URL a subscription may have.
const MAX_URL: usize = 2048;

/// A delivery URL: http or https, with a host, without credentials (they would be shown in every
/// delivery log) or a fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl(url::Url);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    #[error("the URL does not parse: {0}")]
    Malformed(String),
    #[error("the URL must be http or https")]
    Scheme,
    #[error("the URL needs a host")]
    NoHost,
    #[error("the URL must not hold a user name or password (use a custom header)")]
    Credentials,
    #[error("the URL must not have a fragment")]
    Fragment,
    #[error("the URL is longer than {MAX_URL} characters")]
    TooLong,
}

impl FromStr for WebhookUrl {
    type Err = WebhookUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_URL {
            return Err(WebhookUrlError::TooLong);
        }
        let url = url::Url::parse(s).map_err(|e| WebhookUrlError::Malformed(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookUrlError::Scheme);
        }
        if url.host().is_none() {
            return Err(WebhookUrlError::NoHost);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookUrlError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(WebhookUrlError::Fragment);
        }
        Ok(WebhookUrl(url))
    }
}

impl TryFrom<String> for WebhookUrl {
    type Error = WebhookUrlError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<WebhookUrl> for String {
    fn from(url: WebhookUrl) -> String {
        url.0.into()
    }
}

impl WebhookUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Why an address is refused: the ranges no delivery reaches unless allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    Unspecified,
    Loopback,
    /// RFC 1918 and IPv6 unique local addresses.
    Private,
    /// 169.254.0.0/16 (cloud metadata services live there) and fe80::/10.
    LinkLocal,
    /// 100.64.0.0/10.
    SharedCgnat,
    Multicast,
    Broadcast,
    /// Documentation and benchmarking ranges, the IETF's and the future-use ones.
    Reserved,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blocked::Unspecified => "an unspecified address",
            Blocked::Loopback => "a loopback address",
            Blocked::Private => "a private address",
            Blocked::LinkLocal => "a link-local address",
            Blocked::SharedCgnat => "a carrier-grade NAT address",
            Blocked::Multicast => "a multicast address",
            Blocked::Broadcast => "the broadcast address",
            Blocked::Reserved => "a reserved address",
        })
    }
}

/// The range `ip` is in, if deliveries are refused there by default.
pub fn blocked(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<Blocked> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => Blocked::Unspecified,
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => Blocked::Private,
        (127, ..) => Blocked::Loopback,
        (169, 254, _) => Blocked::LinkLocal,
        (100, 64..=127, _) => Blocked::SharedCgnat,
        (224..=239, ..) => Blocked::Multicast,
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => Blocked::Broadcast,
        // IETF protocol assignments, the three documentation nets, the 6to4 relay anycast,
        // benchmarking, and 240.0.0.0/4 (future use).
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (192, 88, 99) | (198, 18..=19, _) => {
            Blocked::Reserved
        }
        (240..=255, ..) => Blocked::Reserved,
        _ => return None,
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<Blocked> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address are judged by it: mapped (::ffff:a.b.c.d), NAT64
    // (64:ff9b::/96) and 6to4 (2002:abcd:efgh::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return blocked_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
    }
    if s[0] == 0x2002 {
        return blocked_v4(Ipv4Addr::from(((s[1] as u32) << 16) | s[2] as u32));
    }
    Some(match s[0] {
        _ if ip.is_unspecified() => Blocked::Unspecified,
        _ if ip.is_loopback() => Blocked::Loopback,
        0xfc00..=0xfdff => Blocked::Private,
        // fe80::/10 link-local, and fec0::/10 (the deprecated site-local) with it.
        0xfe80..=0xfeff => Blocked::LinkLocal,
        0xff00..=0xffff => Blocked::Multicast,
        // The rest of ::/8 (IPv4-compatible and other old forms) and 100::/8 (discard-only
        // 100::/64 among them), Teredo 2001::/32, documentation 2001:db8::/32 and 3fff::/20.
        0x0000..=0x01ff => Blocked::Reserved,
        0x2001 if s[1] == 0 || s[1] == 0x0db8 => Blocked::Reserved,
        0x3fff if s[1] < 0x1000 => Blocked::Reserved,
        _ => return None,
    })
}

/// The ranges an operator opened for deliveries (`--webhook-allow-cidrs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    pub allowed: Vec<IpNet>,
}

impl Destination {
    /// May a delivery connect to `ip`? Allowed ranges first, then the blocked ones.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match blocked(ip) {
            Some(range) => Err(range),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_blocked_range_is_refused_in_both_families_and_public_addresses_pass() {
        let cases = [
            ("0.0.0.0", Blocked::Unspecified),
            ("127.0.0.1", Blocked::Loopback),
            ("127.255.0.9", Blocked::Loopback),
            ("10.1.2.3", Blocked::Private),
            ("172.16.0.1", Blocked::Private),
            ("172.31.255.255", Blocked::Private),
            ("192.168.1.1", Blocked::Private),
            ("169.254.169.254", Blocked::LinkLocal),
            ("100.64.0.1", Blocked::SharedCgnat),
            ("100.127.255.254", Blocked::SharedCgnat),
            ("224.0.0.1", Blocked::Multicast),
            ("239.255.255.250", Blocked::Multicast),
            ("255.255.255.255", Blocked::Broadcast),
            ("240.0.0.1", Blocked::Reserved),
            ("192.0.2.10", Blocked::Reserved),
            ("198.18.0.1", Blocked::Reserved),
            ("::", Blocked::Unspecified),
            ("::1", Blocked::Loopback),
            ("fd00::1", Blocked::Private),
            ("fe80::1", Blocked::LinkLocal),
            ("fec0::1", Blocked::LinkLocal),
            ("ff02::1", Blocked::Multicast),
            ("::ffff:169.254.169.254", Blocked::LinkLocal),
            ("::ffff:127.0.0.1", Blocked::Loopback),
            ("64:ff9b::a00:1", Blocked::Private),
            ("2002:7f00:1::", Blocked::Loopback),
            ("2001:db8::1", Blocked::Reserved),
            ("2001::1", Blocked::Reserved),
            ("100::1", Blocked::Reserved),
            ("::127.0.0.1", Blocked::Reserved),
        ];
        for (addr, range) in cases {
            assert_eq!(blocked(ip(addr)), Some(range), "{addr}");
            assert_eq!(Destination::default().check(ip(addr)), Err(range), "{addr}");
        }
        for addr in [
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "2002:808:808::",
        ] {
            assert_eq!(blocked(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn an_allowed_range_opens_only_itself() {
        let destination = Destination {
            allowed: vec!["127.0.0.1/32".parse().unwrap()],
        };
        assert_eq!(destination.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(destination.check(ip("127.0.0.2")), Err(Blocked::Loopback));
        assert_eq!(destination.check(ip("10.0.0.1")), Err(Blocked::Private));
    }

    #[test]
    fn a_url_is_http_or_https_with_a_host_and_no_credentials() {
        let url: WebhookUrl = "https://hooks.example.com/keyledger?x=1".parse().unwrap();
        assert_eq!(url.as_str(), "https://hooks.example.com/keyledger?x=1");
        for (bad, why) in [
            ("ftp://example.com/", WebhookUrlError::Scheme),
            ("https://user:pw@example.com/", WebhookUrlError::Credentials),
            ("https://example.com/#top", WebhookUrlError::Fragment),
            ("unix:/var/run/x.sock", WebhookUrlError::Scheme),
        ] {
            assert_eq!(bad.parse::<WebhookUrl>(), Err(why), "{bad}");
        }
        assert!(matches!(
            "not a url".parse::<WebhookUrl>(),
            Err(WebhookUrlError::Malformed(_))
        ));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL));
        assert_eq!(long.parse::<WebhookUrl>(), Err(WebhookUrlError::TooLong));
    }
}
