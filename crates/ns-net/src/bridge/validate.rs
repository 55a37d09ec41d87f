//! Every check of an attach request, made before anything is.

use std::collections::HashSet;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::{Errno, NetError, Result};
use crate::ipam;
use crate::types::{self, AttachRequest, Network};

use super::driver::BridgeDriver;

impl BridgeDriver {
    /// Every check of a request, made before anything is.
    pub fn validate(&self, net: &Network, req: &AttachRequest<'_>) -> Result<()> {
        ipam::check_container_id(req.container_id)?;
        types::check_ifname("interface", req.interface)?;
        let mut fams = HashSet::new();
        for (i, ip) in req.ips.iter().enumerate() {
            let field = format!("ips[{i}]");
            let Some(pool) = net.pool(ip.is_ipv6()) else {
                return Err(NetError::config(
                    field,
                    format!(
                        "network {} has no IPv{} subnet",
                        net.name,
                        if ip.is_ipv6() { 6 } else { 4 }
                    ),
                ));
            };
            if !fams.insert(ip.is_ipv6()) {
                return Err(NetError::config(field, "a second address of the same family"));
            }
            pool.check_fixed(&field, ip)?;
        }
        if net.internal && !req.ports.is_empty() {
            return Err(NetError::config(
                "ports",
                format!("network {} is internal: it has no published ports", net.name),
            ));
        }
        let mut seen = HashSet::new();
        for (i, p) in req.ports.iter().enumerate() {
            let field = format!("ports[{i}]");
            if p.count == 0
                || p.host_port as u32 + p.count as u32 > 65536
                || p.container_port as u32 + p.count as u32 > 65536
                || p.host_port == 0
                || p.container_port == 0
            {
                return Err(NetError::config(field, "ports must be 1-65535"));
            }
            if let Some(h) = &p.host_ip {
                if net.pool(h.is_ipv6()).is_none() && !h.is_unspecified() {
                    return Err(NetError::config(
                        field,
                        format!(
                            "host address {h} is IPv{} but network {} has no such subnet",
                            if h.is_ipv6() { 6 } else { 4 },
                            net.name
                        ),
                    ));
                }
                if h.is_ipv6() && h.is_loopback() {
                    return Err(NetError::config(field, "[::1] cannot be published: the kernel does not route ::1 off loopback; publish on 127.0.0.1 or an address of the host"));
                }
            }
            for k in 0..p.count {
                let key = (
                    p.host_ip.filter(|h| !h.is_unspecified()),
                    p.protocol,
                    p.host_port.wrapping_add(k),
                );
                if !seen.insert(key) {
                    return Err(NetError::config(
                        field,
                        format!("host port {}/{} is published twice", key.2, p.protocol.as_str()),
                    ));
                }
            }
        }
        if let Some(m) = req.mac {
            if m[0] & 1 != 0 || m == [0; 6] {
                return Err(NetError::config("mac", "must be a unicast address"));
            }
        }
        netns_check(req.netns)?;
        Ok(())
    }
}

fn netns_check(ns: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: fstat writes a stat of the size given.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer.
    if unsafe { libc::fstat(ns.as_raw_fd(), &mut st) } != 0 {
        return Err(NetError::sys("check the container's network namespace", None, Errno::last()));
    }
    Ok(())
}
