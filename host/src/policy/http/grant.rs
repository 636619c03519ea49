//! `allow_http`: which origins a hook may reach, and which addresses a
//! granted name may lead to.
//!
//! A grant is an origin (`https://hooks.slack.com`, `http://127.0.0.1:9090`,
//! `https://*.example.com`): scheme, host and port, nothing else. A request
//! is allowed when one grant matches all three. Names are resolved by the
//! host, which connects only to the addresses it checked: a name must lead to
//! a public address; loopback, private and link-local addresses are reached
//! only through a grant that names the address itself.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// What a grant's host part matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// One name, lowercase, without a trailing dot.
    Name(String),
    /// `*.example.com`: any name ending in `.example.com` (at any depth), but
    /// not `example.com` itself. Holds ".example.com".
    Subdomains(String),
    /// An address, reached whatever range it is in.
    Address(IpAddr),
}

/// One entry of `allow_http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub scheme: Scheme,
    pub host: HostPattern,
    pub port: u16,
}

/// Where a request goes: the parts of its URL a grant is matched against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: Scheme,
    /// Lowercase, without a trailing dot; an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// The host as an address, if it is one.
    pub fn address(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            write!(f, "{}://{host}", self.scheme.as_str())
        } else {
            write!(f, "{}://{host}:{}", self.scheme.as_str(), self.port)
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Name(n) => n.clone(),
            HostPattern::Subdomains(s) => format!("*{s}"),
            HostPattern::Address(IpAddr::V6(a)) => format!("[{a}]"),
            HostPattern::Address(a) => a.to_string(),
        };
        if self.port == self.scheme.default_port() {
            write!(f, "{}://{host}", self.scheme.as_str())
        } else {
            write!(f, "{}://{host}:{}", self.scheme.as_str(), self.port)
        }
    }
}

const GRANT_FORM: &str =
    "write it as scheme://host or scheme://host:port, e.g. \"https://hc-ping.com\" or \"http://127.0.0.1:9090\"";

impl Grant {
    /// Parses one `allow_http` entry; the error says what is wrong with it
    /// (the entry itself is not secret and may be shown).
    pub fn parse(entry: &str) -> Result<Grant, String> {
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| format!("`{entry}` has no scheme; {GRANT_FORM}"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(format!(
                    "`{entry}`: the scheme `{other}` is not http or https"
                ))
            }
        };
        // One trailing slash is the way origins are often copied; a path,
        // query or fragment would suggest a finer grant than is made.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(format!(
                "`{entry}`: a grant is an origin, without a path, query or fragment (the whole host is granted); {GRANT_FORM}"
            ));
        }
        if authority.contains('@') {
            return Err(format!(
                "`{entry}`: a grant has no user name or password; put credentials in `secrets`"
            ));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| {
            format!(
                "`{entry}`: not host[:port] (an IPv6 address in brackets, a port from 1 to 65535)"
            )
        })?;
        let port = port.unwrap_or(scheme.default_port());
        if host.is_empty() {
            return Err(format!("`{entry}` has no host; {GRANT_FORM}"));
        }
        // `127.0.0.1.` is the address, as a request's authority reads it.
        let host = if let Some(addr) = parse_address(host.strip_suffix('.').unwrap_or(host)) {
            HostPattern::Address(addr)
        } else if let Some(suffix) = host.strip_prefix("*.") {
            let suffix = check_name(entry, suffix)?;
            if !suffix.contains('.') {
                return Err(format!(
                    "`{entry}`: a wildcard must leave at least two labels (`*.example.com`, not `*.com`)"
                ));
            }
            HostPattern::Subdomains(format!(".{suffix}"))
        } else if host.contains('*') {
            return Err(format!(
                "`{entry}`: the only wildcard is a whole first label, as in `https://*.example.com`"
            ));
        } else {
            HostPattern::Name(check_name(entry, host)?)
        };
        Ok(Grant { scheme, host, port })
    }

    pub fn matches(&self, origin: &Origin) -> bool {
        if self.scheme != origin.scheme || self.port != origin.port {
            return false;
        }
        match &self.host {
            HostPattern::Address(a) => origin.address() == Some(*a),
            _ if origin.address().is_some() => false,
            HostPattern::Name(n) => *n == origin.host,
            HostPattern::Subdomains(s) => {
                origin.host.len() > s.len() && origin.host.ends_with(s.as_str())
            }
        }
    }

    /// Whether the grant names an address (which is then reached whatever
    /// range it is in).
    pub fn is_address(&self) -> bool {
        matches!(self.host, HostPattern::Address(_))
    }
}

/// `host[:port]`, with `[v6]` brackets; `None` for a bad port.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        match after {
            "" => (inner, None),
            p => (inner, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        // Digits only: `u16::from_str` also takes a leading `+`.
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return None,
            }
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// An IP address in the forms a URL may carry (dotted IPv4, IPv6 without
/// brackets); nothing looser (no `0x7f.1`, no `2130706433`).
fn parse_address(host: &str) -> Option<IpAddr> {
    host.parse::<IpAddr>().ok()
}

/// A host name, checked and lowercased: ASCII letters, digits, `-` and `.`,
/// labels of 1 to 63 bytes.
fn check_name(entry: &str, name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        return Err(format!(
            "`{entry}`: `{name}` is not a host name (letters, digits, `-` and `.`; an international name in its xn-- form)"
        ));
    }
    // A last label of digits is no DNS name: the system resolver would read
    // `127.1` or `0x7f.1` as an address.
    let last = name.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{entry}`: `{name}` is neither a name nor an IPv4 address in dotted form"
        ));
    }
    Ok(name)
}

/// The origin of a request's URL parts, as the guest set them: `None` when
/// the authority is not a plain `host[:port]` (user info, a bad port).
pub fn origin_of(scheme: Scheme, authority: &str) -> Option<Origin> {
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    let host = match parse_address(host) {
        Some(a) => a.to_string(),
        None => host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase(),
    };
    if host.is_empty() {
        return None;
    }
    Some(Origin {
        scheme,
        host,
        port: port.unwrap_or(scheme.default_port()),
    })
}

/// The addresses of this machine's own interfaces, read once: a name that
/// leads to one of them would reach the machine's own services (through its
/// public address too), so it is refused like the loopback.
pub fn this_machine(ip: IpAddr) -> bool {
    static OWN: std::sync::OnceLock<Vec<IpAddr>> = std::sync::OnceLock::new();
    OWN.get_or_init(own_addresses).contains(&ip)
}

fn own_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that stays valid
    // until freeifaddrs; each node's address is read by its family.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut node = list;
        while !node.is_null() {
            let addr = (*node).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let v4 = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let v6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            node = (*node).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// Why an address may not be reached through a name: `None` for a public
/// address. IPv4 addresses inside IPv6 (mapped, NAT64) are judged as the
/// IPv4 address they carry.
pub fn reserved_range(ip: IpAddr) -> Option<&'static str> {
    named_range(ip).or_else(|| this_machine(ip).then_some("an address of this machine"))
}

fn named_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => reserved_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return reserved_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return reserved_v4(v4).or(Some("NAT64"));
            }
            // 6to4 (2002::/16) carries one in bits 16 to 48.
            if s[0] == 0x2002 {
                let v4 =
                    Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                return reserved_v4(v4).or(reserved_v6(v6));
            }
            reserved_v6(v6)
        }
    }
}

fn reserved_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, _, _] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if ip.is_unspecified() || a == 0 {
        "unspecified (\"this network\")"
    } else if a == 100 && (64..128).contains(&b) {
        "shared address space (carrier-grade NAT)"
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        "multicast or reserved"
    } else if a == 192 && b == 0 && ip.octets()[2] == 0 {
        "IETF protocol assignments"
    } else if a == 198 && (b == 18 || b == 19) {
        "benchmarking"
    } else if a == 192 && b == 88 && ip.octets()[2] == 99 {
        "6to4 relay"
    } else if ip.is_documentation() {
        "documentation"
    } else {
        return None;
    })
}

fn reserved_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "private (unique local)"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "site-local"
    } else if ip.is_multicast() {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation"
    } else if s[0] == 0x2001 && s[1] == 0 {
        // Teredo: an IPv4 address (obfuscated) inside.
        "Teredo"
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // Local-use NAT64 (RFC 8215): any IPv4 address inside.
        "NAT64 (local use)"
    } else if s[0] == 0x100 && s[1..4] == [0, 0, 0] {
        "discard-only"
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        // ::a.b.c.d, the deprecated IPv4-compatible form.
        "IPv4-compatible"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn origin(url: &str) -> Origin {
        let (scheme, rest) = url.split_once("://").unwrap();
        let scheme = if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        };
        origin_of(scheme, rest).unwrap()
    }

    #[test]
    fn grants_match_scheme_host_and_port() {
        let g = Grant::parse("https://hc-ping.com").unwrap();
        assert!(g.matches(&origin("https://hc-ping.com")));
        assert!(g.matches(&origin("https://HC-PING.com.")));
        assert!(g.matches(&origin("https://hc-ping.com:443")));
        assert!(!g.matches(&origin("http://hc-ping.com")));
        assert!(!g.matches(&origin("https://hc-ping.com:8443")));
        assert!(!g.matches(&origin("https://hc-ping.com.evil.example")));
        assert!(!g.matches(&origin("https://evilhc-ping.com")));

        let g = Grant::parse("http://127.0.0.1:9090/").unwrap();
        assert!(g.is_address());
        assert!(g.matches(&origin("http://127.0.0.1:9090")));
        assert!(!g.matches(&origin("http://127.0.0.1")));
        assert!(!g.matches(&origin("http://localhost:9090")));

        let g = Grant::parse("https://[::1]:8443").unwrap();
        assert!(g.matches(&origin("https://[0:0::1]:8443")));
    }

    #[test]
    fn a_wildcard_covers_subdomains_only() {
        let g = Grant::parse("https://*.slack.com").unwrap();
        assert!(g.matches(&origin("https://hooks.slack.com")));
        assert!(g.matches(&origin("https://a.b.slack.com")));
        assert!(!g.matches(&origin("https://slack.com")));
        assert!(!g.matches(&origin("https://evilslack.com")));
        assert!(!g.matches(&origin("https://slack.com.evil.example")));
    }

    #[test]
    fn bad_grants_are_refused_with_the_reason() {
        for (entry, says) in [
            ("hc-ping.com", "no scheme"),
            ("ftp://x.example", "not http or https"),
            ("https://x.example/path", "without a path"),
            ("https://u:p@x.example", "secrets"),
            ("https://x.example:0", "port from 1"),
            ("https://x.example:99999", "port from 1"),
            ("https://x.example:+80", "port from 1"),
            ("http://[::1", "IPv6 address in brackets"),
            ("https://*", "whole first label"),
            ("https://*.com", "two labels"),
            ("https://a.*.example.com", "whole first label"),
            ("https://*x.example.com", "whole first label"),
            ("https://", "no host"),
            ("https://exa mple.com", "not a host name"),
            ("https://bücher.example", "xn--"),
            ("https://0x7f.1", "neither a name nor an IPv4"),
            ("https://2130706433", "neither a name nor an IPv4"),
            ("https://127.1", "neither a name nor an IPv4"),
        ] {
            let e = Grant::parse(entry).unwrap_err();
            assert!(e.contains(says), "{entry}: {e}");
        }
    }

    #[test]
    fn reserved_ranges_are_named() {
        for (ip, range) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "carrier-grade"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("2002:7f00:1::1", "loopback"),
            ("2002:a00:1::1", "private"),
            ("64:ff9b:1::a9fe:a9fe", "NAT64"),
            ("2001:0:4136:e378::1", "Teredo"),
            ("100::1", "discard"),
            ("192.88.99.1", "6to4 relay"),
        ] {
            let got = reserved_range(ip.parse().unwrap());
            assert!(got.is_some_and(|r| r.contains(range)), "{ip}: {got:?}");
        }
        for ip in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert_eq!(reserved_range(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn this_machines_own_addresses_are_known() {
        assert!(this_machine("127.0.0.1".parse().unwrap()));
        assert!(!this_machine("192.0.2.77".parse().unwrap()));
    }

    proptest! {
        /// Whatever the entry, parsing never panics, and an accepted grant
        /// prints as an entry that parses back to itself.
        #[test]
        fn parsed_grants_print_back(entry in "(https?|ftp)://[a-z0-9*.:\\[\\]@/-]{0,30}") {
            if let Ok(g) = Grant::parse(&entry) {
                prop_assert_eq!(Grant::parse(&g.to_string()), Ok(g));
            }
        }

        /// A grant for one name never matches another name.
        #[test]
        fn a_name_grant_matches_only_that_name(a in "[a-z]{1,8}\\.example", b in "[a-z]{1,8}\\.example") {
            let g = Grant::parse(&format!("https://{a}")).unwrap();
            prop_assert_eq!(g.matches(&origin(&format!("https://{b}"))), a == b);
        }
    }
}
