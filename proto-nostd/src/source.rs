//! Where a connection comes from, as both sides' per-source limits count it (the agent's
//! admission, the server's HTTP API).

use core::net::{IpAddr, Ipv6Addr};

/// Where a connection comes from, as far as a per-source limit is concerned: an IPv4 address
/// (IPv4-mapped IPv6 included), or an IPv6 /64, the smallest network one host is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The source of a connection from `ip`.
    #[inline]
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !(u128::MAX >> 64);
                Source(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => Source(v4),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(ip: &str) -> Source {
        Source::of(ip.parse().unwrap())
    }

    #[test]
    fn an_ipv4_address_or_an_ipv6_64_is_one_source() {
        assert_eq!(of("2001:db8:1:2:aaaa::1"), of("2001:db8:1:2:bbbb::2"));
        assert_ne!(of("2001:db8:1:2::1"), of("2001:db8:1:3::1"));
        assert_eq!(of("::ffff:10.0.0.1"), of("10.0.0.1"));
        assert_ne!(of("10.0.0.1"), of("10.0.0.2"));
        assert_eq!(
            of("2001:db8:1:2::1"),
            Source(IpAddr::V6("2001:db8:1:2::".parse().unwrap()))
        );
    }
}
