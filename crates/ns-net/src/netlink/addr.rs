//! Addresses: add, delete, dump (IPv4 and IPv6).

use std::net::IpAddr;

use super::attr::{self, Attrs, Request};
use super::socket::{Netlink, NlError, NLM_F_CREATE, NLM_F_EXCL};
use crate::error::{Errno, Result};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
/// No duplicate address detection: an address ns allocated is known to be unique on its
/// bridge, and waiting for DAD would hold IPv6 back for a second or more.
const IFA_F_NODAD: u32 = 0x02;
const IFADDRMSG_LEN: usize = 8;

/// An address on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
}

fn family(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn ifaddrmsg(fam: u8, prefix: u8, index: u32) -> [u8; IFADDRMSG_LEN] {
    let mut b = [0u8; IFADDRMSG_LEN];
    b[0] = fam;
    b[1] = prefix;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b
}

fn address_request(ty: u16, flags: u16, index: u32, ip: &IpAddr, prefix: u8) -> Request {
    let mut r = Request::new(ty, flags);
    let bytes = attr::ip_bytes(ip);
    r.bytes(&ifaddrmsg(family(ip), prefix, index));
    if ip.is_ipv4() {
        r.attr(IFA_LOCAL, &bytes);
    }
    r.attr(IFA_ADDRESS, &bytes);
    r
}

pub(crate) fn parse_address(p: &[u8]) -> Option<Address> {
    if p.len() < IFADDRMSG_LEN {
        return None;
    }
    let fam = p[0];
    let prefix_len = p[1];
    let index = u32::from_ne_bytes(p[4..8].try_into().ok()?);
    let (mut local, mut addr) = (None, None);
    for (ty, v) in Attrs::after(p, IFADDRMSG_LEN) {
        match ty {
            IFA_LOCAL => local = attr::ip_of(fam, v),
            IFA_ADDRESS => addr = attr::ip_of(fam, v),
            _ => {}
        }
    }
    // On a point-to-point link IFA_ADDRESS is the peer's; IFA_LOCAL is ours when present.
    Some(Address { index, address: local.or(addr)?, prefix_len })
}

impl Netlink {
    /// Adds `ip/prefix` to the link `index` (`name` for messages). IPv6 without DAD.
    pub fn add_address(&mut self, name: &str, index: u32, ip: IpAddr, prefix: u8) -> Result<()> {
        let mut r = address_request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, &ip, prefix);
        if ip.is_ipv6() {
            r.attr_u32(IFA_FLAGS, IFA_F_NODAD);
        }
        self.request(r).map_err(|e| e.context(&format!("add address {ip}/{prefix} to"), Some(name)))
    }

    /// Removes an address; `Ok(false)` when it was not there.
    pub fn delete_address(
        &mut self,
        name: &str,
        index: u32,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<bool> {
        match self.request(address_request(RTM_DELADDR, 0, index, &ip, prefix)) {
            Ok(()) => Ok(true),
            Err(NlError { errno: Errno(libc::EADDRNOTAVAIL | libc::ENODEV), .. }) => Ok(false),
            Err(e) => Err(e.context(&format!("delete address {ip}/{prefix} from"), Some(name))),
        }
    }

    /// Every address of the namespace, both families.
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let mut out = Vec::new();
        let mut r = Request::new(RTM_GETADDR, 0);
        r.bytes(&ifaddrmsg(libc::AF_UNSPEC as u8, 0, 0));
        self.dump(r, &mut |ty, p| {
            if ty == RTM_NEWADDR {
                out.extend(parse_address(p));
            }
            Ok(())
        })
        .map_err(|e| e.context("list addresses", None))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_reply_prefers_the_local_address() {
        let ip: IpAddr = "10.89.0.2".parse().unwrap();
        let r = address_request(RTM_NEWADDR, 0, 4, &ip, 24);
        let a = parse_address(r.payload()).expect("an address");
        assert_eq!(a, Address { index: 4, address: ip, prefix_len: 24 });
        let v6: IpAddr = "2001:db8::2".parse().unwrap();
        let r = address_request(RTM_NEWADDR, 0, 4, &v6, 64);
        assert_eq!(parse_address(r.payload()).map(|a| a.address), Some(v6));
        assert_eq!(parse_address(&r.payload()[..4]), None);
    }
}
