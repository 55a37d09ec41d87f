//! The contract: what a caller asks for (a network, an attachment request, published ports)
//! and what comes back (the attachment record it persists for teardown).

use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::error::{NetError, Result};
use crate::firewall::{NetworkRules, Proto, Publish};
use crate::ipam::Pool;

/// The name of the default network, and its bridge.
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "ns0";
/// Where the default network's subnet is chosen from: the first that no route of the host
/// touches.
pub const DEFAULT_SUBNETS: &[&str] = &[
    "10.88.0.0/16",
    "10.89.0.0/16",
    "10.90.0.0/16",
    "172.17.0.0/16",
    "172.18.0.0/16",
    "172.19.0.0/16",
    "192.168.200.0/24",
];

/// One subnet of a network as asked for (`--subnet`, `--gateway`, `--ip-range`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetSpec {
    pub subnet: Cidr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<Cidr>,
}

/// A bridge network, validated. The caller persists it (`ns network create`) and hands it to
/// every call of the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    pub name: String,
    /// The bridge device (`ns0` for the default network, `ns-<name>` when that fits).
    pub bridge: String,
    /// At most one IPv4 and one IPv6 subnet.
    pub subnets: Vec<Pool>,
    /// No way out: no masquerade, nothing forwarded off the bridge, no published ports.
    #[serde(default)]
    pub internal: bool,
    /// `None`: the MTU of the host's default-route interface, fixed when the bridge is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NetError::config(
            "name",
            format!("{name:?} must be 1-64 of [A-Za-z0-9_.-], starting with a letter or digit"),
        ))
    }
}

/// An interface name the kernel takes: 1-15 bytes, no `/`, no whitespace, not `.`/`..`.
pub fn check_ifname(field: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(NetError::config(
            field,
            format!("{name:?} is not an interface name (1-15 characters, no '/', ':' or spaces)"),
        ))
    }
}

/// FNV-1a, for short stable names.
pub(crate) fn short_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl Network {
    /// Checks a network as asked for; the bridge is named from it unless given.
    pub fn new(
        name: &str,
        bridge: Option<&str>,
        subnets: &[SubnetSpec],
        internal: bool,
        mtu: Option<u32>,
    ) -> Result<Network> {
        check_name(name)?;
        let bridge = match bridge {
            Some(b) => b.to_owned(),
            None if name == DEFAULT_NETWORK => DEFAULT_BRIDGE.to_owned(),
            None if name.len() <= 12 => format!("ns-{name}"),
            None => format!("ns-{:012x}", short_hash(name) & 0xffff_ffff_ffff),
        };
        check_ifname("bridge", &bridge)?;
        if subnets.is_empty() {
            return Err(NetError::config("subnets", "a bridge network needs at least one subnet"));
        }
        let mut pools: Vec<Pool> = Vec::new();
        for (i, s) in subnets.iter().enumerate() {
            let field = format!("subnets[{i}]");
            let p = Pool::new(&field, s.subnet, s.gateway, s.ip_range)?;
            if let Some(j) = pools.iter().position(|o| o.subnet.is_ipv6() == p.subnet.is_ipv6()) {
                return Err(NetError::config(
                    field,
                    format!(
                        "a second IPv{} subnet (subnets[{j}] is one)",
                        if p.subnet.is_ipv6() { 6 } else { 4 }
                    ),
                ));
            }
            let special = if p.subnet.is_ipv6() {
                ["fe80::/10", "ff00::/8", "::1/128"]
                    .iter()
                    .any(|c| c.parse::<Cidr>().map(|c| c.overlaps(&p.subnet)).unwrap_or(false))
            } else {
                ["127.0.0.0/8", "224.0.0.0/4", "0.0.0.0/8", "169.254.0.0/16", "240.0.0.0/4"]
                    .iter()
                    .any(|c| c.parse::<Cidr>().map(|c| c.overlaps(&p.subnet)).unwrap_or(false))
            };
            if special {
                return Err(NetError::config(
                    format!("{field}.subnet"),
                    format!("{} is a loopback, link-local, multicast or reserved range", p.subnet),
                ));
            }
            pools.push(p);
        }
        if let Some(m) = mtu {
            if !(576..=65535).contains(&m) {
                return Err(NetError::config("mtu", format!("{m} is outside 576-65535")));
            }
        }
        Ok(Network { name: name.to_owned(), bridge, subnets: pools, internal, mtu })
    }

    pub(crate) fn rules(&self) -> NetworkRules {
        NetworkRules {
            name: self.name.clone(),
            bridge: self.bridge.clone(),
            subnets: self.subnets.iter().map(|p| p.subnet).collect(),
            internal: self.internal,
        }
    }

    pub fn pool(&self, v6: bool) -> Option<&Pool> {
        self.subnets.iter().find(|p| p.subnet.is_ipv6() == v6)
    }
}

/// A published port or range, `-p [HOST_IP:]HOST_PORT[-END]:CONTAINER_PORT[-END][/tcp|udp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    /// How many consecutive ports (1 for one port; a range maps port by port).
    #[serde(default = "one")]
    pub count: u16,
    pub protocol: Proto,
}

fn one() -> u16 {
    1
}

fn port_range(s: &str) -> std::result::Result<(u16, u16), String> {
    let p = |t: &str| {
        t.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{t:?} is not a port (1-65535)"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (p(a)?, p(b)?);
            if b < a {
                return Err(format!("range {s} ends before it starts"));
            }
            Ok((a, b - a + 1))
        }
        None => Ok((p(s)?, 1)),
    }
}

impl FromStr for PortMapping {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<PortMapping, String> {
        let (rest, protocol) = match s.rsplit_once('/') {
            Some((r, "tcp")) => (r, Proto::Tcp),
            Some((r, "udp")) => (r, Proto::Udp),
            Some((_, p)) => return Err(format!("protocol {p:?} is not tcp or udp")),
            None => (s, Proto::Tcp),
        };
        // The host address may be an IPv6 literal in brackets.
        let (host_ip, ports) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, after) =
                r.split_once("]:").ok_or("an IPv6 host address is written [ADDR]:PORT:PORT")?;
            (Some(ip.parse::<IpAddr>().map_err(|_| format!("{ip:?} is not an IP address"))?), after)
        } else {
            let parts: Vec<&str> = rest.split(':').collect();
            match parts.len() {
                2 => (None, rest),
                3 => (
                    Some(
                        parts[0]
                            .parse::<IpAddr>()
                            .map_err(|_| format!("{:?} is not an IP address", parts[0]))?,
                    ),
                    &rest[parts[0].len() + 1..],
                ),
                _ => return Err("expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]".into()),
            }
        };
        let (h, c) = ports.split_once(':').ok_or("expected HOST_PORT:CONTAINER_PORT")?;
        let (host_port, hn) = port_range(h)?;
        let (container_port, cn) = port_range(c)?;
        if hn != cn {
            return Err(format!("host range {h} and container range {c} differ in length"));
        }
        Ok(PortMapping { host_ip, host_port, container_port, count: hn, protocol })
    }
}

/// What a caller asks of [`crate::BridgeDriver::setup`] for one container on one network.
#[derive(Debug, Clone)]
pub struct AttachRequest<'a> {
    pub container_id: &'a str,
    /// The container's network namespace (`/proc/PID/ns/net` of the child, opened).
    pub netns: BorrowedFd<'a>,
    /// The interface inside (`eth0`; `eth1` for a second network).
    pub interface: &'a str,
    /// Fixed addresses (`--ip`, `--ip6`), at most one per family.
    pub ips: Vec<IpAddr>,
    pub ports: Vec<PortMapping>,
    pub mac: Option<[u8; 6]>,
    /// Add the default routes via this network's gateways (the first network of a container;
    /// a second network adds only its own subnet's route, which the address brings).
    pub default_route: bool,
}

/// What setup made, for the caller to persist: teardown needs exactly this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub network: String,
    pub container_id: String,
    pub bridge: String,
    /// The host end of the veth (on the bridge), `ns` + 12 hex digits.
    pub host_veth: String,
    /// The container's end, inside its namespace.
    pub interface: String,
    pub mac: String,
    pub mtu: u32,
    /// The container's addresses, with their prefix lengths.
    pub addresses: Vec<Cidr>,
    pub gateways: Vec<IpAddr>,
    /// One element per published port (ranges expanded).
    #[serde(default)]
    pub published: Vec<Publish>,
}

/// The name of a container's host veth on a network: stable, short, and told apart from
/// bridges (`ns-…`, `ns0`).
pub fn host_veth_name(network: &str, container: &str) -> String {
    format!("ns{:012x}", short_hash(&format!("{network}/{container}")) & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(s: &str) -> PortMapping {
        s.parse().unwrap()
    }

    #[test]
    fn published_ports_parse_like_dockers_flag() {
        assert_eq!(
            pm("8080:80"),
            PortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                count: 1,
                protocol: Proto::Tcp
            }
        );
        let p = pm("127.0.0.1:8053:53/udp");
        assert_eq!(
            (p.host_ip.unwrap().to_string(), p.host_port, p.container_port, p.protocol),
            ("127.0.0.1".into(), 8053, 53, Proto::Udp)
        );
        let p = pm("[::1]:8080-8082:80-82");
        assert_eq!(
            (p.host_ip.unwrap().to_string(), p.host_port, p.container_port, p.count),
            ("::1".into(), 8080, 80, 3)
        );
        assert_eq!(
            "8080-8081:80".parse::<PortMapping>().unwrap_err(),
            "host range 8080-8081 and container range 80 differ in length"
        );
        assert_eq!("0:80".parse::<PortMapping>().unwrap_err(), "\"0\" is not a port (1-65535)");
        assert_eq!(
            "80:80/sctp".parse::<PortMapping>().unwrap_err(),
            "protocol \"sctp\" is not tcp or udp"
        );
        assert!("x:80:80".parse::<PortMapping>().is_err());
        assert!("80".parse::<PortMapping>().is_err());
        assert!("90-80:90-80".parse::<PortMapping>().is_err());
    }

    #[test]
    fn a_network_is_checked_and_its_bridge_named() {
        let s = |c: &str| SubnetSpec { subnet: c.parse().unwrap(), gateway: None, ip_range: None };
        let n = Network::new("web", None, &[s("10.89.0.0/24"), s("2001:db8:89::/64")], false, None)
            .unwrap();
        assert_eq!(n.bridge, "ns-web");
        assert_eq!(
            Network::new("bridge", None, &[s("10.88.0.0/16")], false, None).unwrap().bridge,
            "ns0"
        );
        let long =
            Network::new("a-rather-long-name", None, &[s("10.89.0.0/24")], false, None).unwrap();
        assert!(long.bridge.starts_with("ns-") && long.bridge.len() == 15, "{}", long.bridge);
        let e = Network::new("web", None, &[s("10.89.0.0/24"), s("10.90.0.0/24")], false, None)
            .unwrap_err();
        assert_eq!(e.message, "subnets[1]: a second IPv4 subnet (subnets[0] is one)");
        let e = Network::new("web", None, &[s("127.0.0.0/24")], false, None).unwrap_err();
        assert!(
            e.message.starts_with("subnets[0].subnet: 127.0.0.0/24 is a loopback"),
            "{}",
            e.message
        );
        assert!(Network::new("-x", None, &[s("10.89.0.0/24")], false, None).is_err());
        assert!(Network::new("web", None, &[], false, None).is_err());
        assert!(Network::new("web", None, &[s("10.89.0.0/24")], false, Some(100)).is_err());
        assert!(Network::new("web", Some("a/b"), &[s("10.89.0.0/24")], false, None).is_err());
    }

    #[test]
    fn host_veth_names_are_short_stable_and_distinct() {
        let a = host_veth_name("web", "c1");
        assert_eq!(a.len(), 14);
        assert_eq!(a, host_veth_name("web", "c1"));
        assert_ne!(a, host_veth_name("web", "c2"));
        assert_ne!(a, host_veth_name("db", "c1"));
    }
}
