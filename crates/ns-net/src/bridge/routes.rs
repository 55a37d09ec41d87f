//! The host's routes as the driver reads them: the subnets no route covers (a new network must
//! not hide a part of the host's own network), the default network, the MTU of the interface
//! the default route goes out of.

use crate::cidr::Cidr;
use crate::error::{NetError, Result};
use crate::netlink::{self, Netlink, Route};
use crate::types::{self, Network, SubnetSpec};

/// The MTU of the interface the host's default route goes out of (IPv4 first), if any.
pub fn default_route_mtu(nl: &mut Netlink) -> Result<Option<u32>> {
    let routes = nl.routes()?;
    let pick = |fam: i32| {
        routes
            .iter()
            .find(|r| r.is_default() && r.family == fam as u8 && r.table == netlink::RT_TABLE_MAIN)
            .and_then(|r| r.oif)
    };
    let Some(oif) = pick(libc::AF_INET).or_else(|| pick(libc::AF_INET6)) else { return Ok(None) };
    Ok(nl.links()?.into_iter().find(|l| l.index == oif).map(|l| l.mtu))
}

/// The host's routes that overlap `subnet`, other than those through `skip` (a network's own
/// bridge), as `10.0.0.0/8 dev 2` for messages.
fn overlapping(subnet: &Cidr, routes: &[Route], skip: Option<u32>) -> Option<String> {
    routes.iter().find_map(|r| {
        let dst = r.dst?;
        if r.dst_len == 0 || (skip.is_some() && r.oif == skip) {
            return None;
        }
        let c = Cidr::new(dst, r.dst_len)?;
        let ignored = ["fe80::/10", "ff00::/8"]
            .iter()
            .any(|s| s.parse::<Cidr>().map(|x| x.overlaps(&c)).unwrap_or(false));
        (!ignored && c.overlaps(subnet)).then(|| {
            format!(
                "{}/{}{}",
                c.network(),
                c.prefix,
                r.oif.map(|o| format!(" (device {o})")).unwrap_or_default()
            )
        })
    })
}

/// Checks that no route of this namespace touches the network's subnets (a new network must
/// not hide a part of the host's own network).
pub fn check_subnets_free(nl: &mut Netlink, net: &Network, own_bridge: Option<u32>) -> Result<()> {
    let routes = nl.routes()?;
    for (i, p) in net.subnets.iter().enumerate() {
        if let Some(r) = overlapping(&p.subnet, &routes, own_bridge) {
            return Err(NetError::config(
                format!("subnets[{i}].subnet"),
                format!("{} overlaps the host's route {r}", p.subnet),
            )
            .with_hint("choose a subnet no route of the host covers (see ip route)"));
        }
    }
    Ok(())
}

/// The default network `bridge`: the first of [`types::DEFAULT_SUBNETS`] that collides with no
/// route of the host.
pub fn default_network(nl: &mut Netlink) -> Result<Network> {
    let routes = nl.routes()?;
    for s in types::DEFAULT_SUBNETS {
        let c: Cidr = s.parse().map_err(|e: String| NetError::config("subnet", e))?;
        if overlapping(&c, &routes, None).is_none() {
            return Network::new(
                types::DEFAULT_NETWORK,
                None,
                &[SubnetSpec { subnet: c, gateway: None, ip_range: None }],
                false,
                None,
            );
        }
    }
    Err(NetError::config("subnet", "every default subnet overlaps a route of the host")
        .with_hint("create the network with --subnet"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subnet_that_a_host_route_covers_is_found_and_the_networks_own_bridge_is_not() {
        let r = |dst: &str, len: u8, oif: u32| Route {
            family: 2,
            dst: Some(dst.parse().unwrap()),
            dst_len: len,
            gateway: None,
            oif: Some(oif),
            table: 254,
            kind: 1,
            priority: None,
        };
        let routes = vec![r("10.0.0.0", 8, 2), r("10.89.0.0", 24, 7), r("fe80::", 64, 2)];
        assert_eq!(
            overlapping(&"10.89.0.0/24".parse().unwrap(), &routes, Some(7)).as_deref(),
            Some("10.0.0.0/8 (device 2)")
        );
        assert_eq!(overlapping(&"192.0.2.0/24".parse().unwrap(), &routes, None), None);
        assert_eq!(overlapping(&"fe80::/64".parse().unwrap(), &routes, None), None);
    }
}
