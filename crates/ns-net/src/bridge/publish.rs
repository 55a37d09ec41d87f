//! Published ports: the DNAT elements a container's port mappings become, and what a publish
//! that failed on a taken port says about it.

use std::net::IpAddr;

use crate::error::{Errno, NetError};
use crate::firewall::{self, Publish};
use crate::types::PortMapping;

use super::driver::BridgeDriver;

/// Ports as DNAT elements: a range becomes one element per port; with no host address, one
/// for each family the container has.
pub fn plan_published(
    container: &str,
    ports: &[PortMapping],
    addresses: &[IpAddr],
) -> Vec<Publish> {
    let mut out = Vec::new();
    for p in ports {
        for to in addresses {
            if let Some(h) = &p.host_ip {
                if h.is_ipv6() != to.is_ipv6() {
                    continue;
                }
            }
            for k in 0..p.count {
                // A range past 65535 was refused by validate; here it is only cut short.
                let (Some(host_port), Some(to_port)) =
                    (p.host_port.checked_add(k), p.container_port.checked_add(k))
                else {
                    break;
                };
                out.push(Publish {
                    container: container.to_owned(),
                    proto: p.protocol,
                    host_ip: p.host_ip.filter(|h| !h.is_unspecified()),
                    host_port,
                    to: *to,
                    to_port,
                });
            }
        }
    }
    out
}

impl BridgeDriver {
    /// A publish that failed because a port is taken says which and by whom.
    pub(super) fn explain_publish_failure(&self, e: NetError, ours: &[Publish]) -> NetError {
        if e.code != "EEXIST" {
            return e;
        }
        let Ok(Some(t)) = self.nft.list() else { return e };
        let live = firewall::published(&t);
        for p in ours {
            if let Some(o) = live.iter().find(|o| {
                o.proto == p.proto
                    && o.host_port == p.host_port
                    && o.host_ip == p.host_ip
                    && o.to.is_ipv6() == p.to.is_ipv6()
            }) {
                return NetError::sys(
                    format!("publish port {} of container", p.describe()),
                    Some(&p.container),
                    Errno(libc::EADDRINUSE),
                )
                .with_hint(format!("container {} publishes it already", o.container));
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_port_by_port_and_host_addresses_pick_their_family() {
        let addrs: Vec<IpAddr> =
            vec!["10.89.0.2".parse().unwrap(), "2001:db8:89::2".parse().unwrap()];
        let ports: Vec<PortMapping> =
            ["9000-9001:7000-7001", "127.0.0.1:8053:53/udp", "0.0.0.0:80:8080"]
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
        let got: Vec<String> = plan_published("c", &ports, &addrs)
            .iter()
            .map(|p| format!("{} -> {}:{}", p.describe(), p.to, p.to_port))
            .collect();
        assert_eq!(
            got,
            [
                "0.0.0.0:9000/tcp -> 10.89.0.2:7000",
                "0.0.0.0:9001/tcp -> 10.89.0.2:7001",
                "[::]:9000/tcp -> 2001:db8:89::2:7000",
                "[::]:9001/tcp -> 2001:db8:89::2:7001",
                "127.0.0.1:8053/udp -> 10.89.0.2:53",
                "0.0.0.0:80/tcp -> 10.89.0.2:8080",
            ]
        );
    }
}
