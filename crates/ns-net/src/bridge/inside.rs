//! The container's side of its veth, configured from inside its network namespace.

use crate::error::{Errno, NetError, Result};
use crate::netlink::{Netlink, RouteSpec};
use crate::types::{AttachRequest, Attachment};

/// The container's side, through a netlink socket opened inside its namespace: the interface
/// up, its addresses, a default route per family via the gateway.
pub(super) fn configure_inside(req: &AttachRequest<'_>, att: &Attachment) -> Result<()> {
    let mut inner = Netlink::open_in(req.netns)?;
    let ifc = req.interface;
    let link = inner.link(ifc)?.ok_or_else(|| {
        NetError::sys("find the container's interface", Some(ifc), Errno(libc::ENODEV))
    })?;
    inner.set_up(ifc, true)?;
    for a in &att.addresses {
        inner.add_address(ifc, link.index, a.addr, a.prefix)?;
    }
    for g in att.gateways.iter().filter(|_| req.default_route) {
        if att.addresses.iter().any(|a| a.addr.is_ipv6() == g.is_ipv6()) {
            inner.add_route(&RouteSpec {
                dst: None,
                gateway: Some(*g),
                oif: link.index,
                dev: ifc.to_owned(),
            })?;
        }
    }
    Ok(())
}
