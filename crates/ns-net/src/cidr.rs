//! Subnets: `10.89.0.0/24`, `2001:db8:89::/64`, parsed, checked and walked as integers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address with a prefix length. As a subnet its host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

fn bits(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

pub(crate) fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(*a) as u128,
        IpAddr::V6(a) => u128::from(*a),
    }
}

pub(crate) fn from_u128(v6: bool, n: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(n))
    } else {
        IpAddr::V4(Ipv4Addr::from(n as u32))
    }
}

impl Cidr {
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        (prefix <= bits(&addr)).then_some(Cidr { addr, prefix })
    }

    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }

    fn mask(&self) -> u128 {
        let b = bits(&self.addr) as u32;
        let host = b - self.prefix as u32;
        let all = if b == 32 { u32::MAX as u128 } else { u128::MAX };
        if host >= 128 {
            0
        } else {
            all & !((1u128 << host) - 1) & all
        }
    }

    /// The first address of the subnet (host bits zero).
    pub fn network(&self) -> IpAddr {
        from_u128(self.is_ipv6(), to_u128(&self.addr) & self.mask())
    }

    /// The last address (host bits all one).
    pub fn last(&self) -> IpAddr {
        let b = bits(&self.addr) as u32;
        let host = b - self.prefix as u32;
        let span = if host >= 128 { u128::MAX } else { (1u128 << host) - 1 };
        from_u128(self.is_ipv6(), (to_u128(&self.addr) & self.mask()) | span)
    }

    pub fn is_network(&self) -> bool {
        self.addr == self.network()
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        ip.is_ipv6() == self.is_ipv6() && (to_u128(ip) & self.mask()) == to_u128(&self.network())
    }

    /// Two subnets share an address.
    pub fn overlaps(&self, o: &Cidr) -> bool {
        self.is_ipv6() == o.is_ipv6()
            && (self.contains(&o.network()) || o.contains(&self.network()))
    }

    /// `n` addresses after the network address, if still inside.
    pub fn nth(&self, n: u128) -> Option<IpAddr> {
        let base = to_u128(&self.network());
        let end = to_u128(&self.last());
        let v = base.checked_add(n)?;
        (v <= end).then(|| from_u128(self.is_ipv6(), v))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// `ADDR/PREFIX`; a bare address is a host route (/32 or /128).
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("{a:?} is not an IP address"))?;
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| format!("{p:?} is not a prefix length"))?,
            None => bits(&addr),
        };
        Cidr::new(addr, prefix)
            .ok_or_else(|| format!("prefix length {prefix} is longer than {}", bits(&addr)))
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_parse_and_know_their_bounds() {
        let n = c("10.89.0.0/24");
        assert!(n.is_network());
        assert_eq!(n.last().to_string(), "10.89.0.255");
        assert_eq!(n.nth(1).unwrap().to_string(), "10.89.0.1");
        assert_eq!(n.nth(256), None);
        assert!(n.contains(&"10.89.0.77".parse().unwrap()));
        assert!(!n.contains(&"10.89.1.0".parse().unwrap()));
        assert!(!n.contains(&"::1".parse().unwrap()));
        assert!(!c("10.89.0.1/24").is_network());
        assert_eq!(c("10.89.0.1/24").network().to_string(), "10.89.0.0");
        let v6 = c("2001:db8:89::/64");
        assert_eq!(v6.last().to_string(), "2001:db8:89:0:ffff:ffff:ffff:ffff");
        assert_eq!(c("0.0.0.0/0").last().to_string(), "255.255.255.255");
        assert_eq!(c("::/0").last().to_string(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert!(c("10.0.0.0/8").overlaps(&n) && n.overlaps(&c("10.0.0.0/8")));
        assert!(!n.overlaps(&c("10.89.1.0/24")));
        assert_eq!(c("192.0.2.7").prefix, 32);
    }

    #[test]
    fn bad_subnets_say_why() {
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>().unwrap_err(),
            "prefix length 33 is longer than 32"
        );
        assert_eq!("ten/8".parse::<Cidr>().unwrap_err(), "\"ten\" is not an IP address");
        assert_eq!("10.0.0.0/x".parse::<Cidr>().unwrap_err(), "\"x\" is not a prefix length");
    }
}
