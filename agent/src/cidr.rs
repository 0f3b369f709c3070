//! `allow_from` address ranges: IPv4 and IPv6 CIDR blocks, checked before the SSH handshake.

use std::fmt;
use std::net::IpAddr;

/// One address range, e.g. `192.168.1.0/24` or `fd00::/8`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Every IPv4 and every IPv6 address.
    pub fn everything() -> [Cidr; 2] {
        [
            Cidr {
                network: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                prefix: 0,
            },
            Cidr {
                network: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                prefix: 0,
            },
        ]
    }

    /// Parses `ADDRESS[/PREFIX]`.
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| CidrError::Address(text.into()))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(CidrError::Prefix(text.into(), max)),
            },
        };
        Ok(Cidr { network, prefix })
    }

    /// Whether `addr` is in this range. IPv4 addresses mapped into IPv6 (`::ffff:a.b.c.d`, as a
    /// dual-stack listener reports them) count as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => prefix_match(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(a)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                prefix_match(u128::from(net), u128::from(a), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_match(net: u128, addr: u128, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    net & mask == addr & mask
}

/// Why an `allow_from` range was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CidrError {
    /// The text (given) does not start with an IP address.
    Address(String),
    /// The text's prefix length is not a number up to the address's bits (the most).
    Prefix(String, u8),
}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::Address(text) => write!(f, "`{text}` is not an IP address range"),
            CidrError::Prefix(text, max) => {
                write!(f, "`{text}`: the prefix length must be 0 to {max}")
            }
        }
    }
}

impl std::error::Error for CidrError {}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Whether `addr` is in any of `ranges`.
pub fn allowed(ranges: &[Cidr], addr: IpAddr) -> bool {
    ranges.iter().any(|range| range.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn matches_v4_and_v6_ranges() {
        let lan = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(lan.contains(ip("192.168.1.200")));
        assert!(!lan.contains(ip("192.168.2.1")));
        assert!(
            lan.contains(ip("::ffff:192.168.1.7")),
            "v4-mapped v6 counts as v4"
        );
        assert!(!lan.contains(ip("fd00::1")));
        let ula = Cidr::parse("fd00::/8").unwrap();
        assert!(ula.contains(ip("fd12:3456::1")));
        assert!(!ula.contains(ip("fe80::1")));
        let any = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(any.contains(ip("8.8.8.8")));
        let host = Cidr::parse("10.0.0.1").unwrap();
        assert!(host.contains(ip("10.0.0.1")) && !host.contains(ip("10.0.0.2")));
        assert!(allowed(&[lan, ula], ip("fd00::5")));
        assert!(!allowed(&[], ip("127.0.0.1")));
    }

    #[test]
    fn refuses_malformed_ranges() {
        for bad in [
            "",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "example.com",
            "10.0.0.0/x",
            "10.0.0.0/-1",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Cidr::parse("example.com").unwrap_err().to_string(),
            "`example.com` is not an IP address range"
        );
        assert_eq!(
            Cidr::parse("fd00::/129").unwrap_err().to_string(),
            "`fd00::/129`: the prefix length must be 0 to 128"
        );
        assert_eq!(
            Cidr::parse("10.1.0.0/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
    }
}
