//! Routes: add, delete, dump. ns adds a container's default route (via its gateway); the dump
//! tells a new network's subnet from every route the host has.

use std::net::IpAddr;

use super::attr::{self, Attrs, Request};
use super::socket::{Netlink, NlError, NLM_F_CREATE, NLM_F_EXCL};
use crate::error::{Errno, Result};

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
pub const RT_TABLE_MAIN: u32 = 254;
pub const RT_TABLE_LOCAL: u32 = 255;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;
const RTMSG_LEN: usize = 12;

/// A route as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub family: u8,
    /// `None` with `dst_len` 0: a default route.
    pub dst: Option<IpAddr>,
    pub dst_len: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
    /// `RTN_*`: 1 unicast, 2 local, 3 broadcast, …
    pub kind: u8,
    pub priority: Option<u32>,
}

impl Route {
    pub fn is_default(&self) -> bool {
        self.dst_len == 0
    }
}

/// A route to add or delete: to `dst/dst_len` (default when `None`), via `gateway`, out of
/// `oif`, in the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    pub oif: u32,
    /// For messages: the device's name.
    pub dev: String,
}

impl RouteSpec {
    fn family(&self) -> u8 {
        let v6 = match (&self.dst, &self.gateway) {
            (Some((d, _)), _) => d.is_ipv6(),
            (None, Some(g)) => g.is_ipv6(),
            (None, None) => false,
        };
        if v6 {
            libc::AF_INET6 as u8
        } else {
            libc::AF_INET as u8
        }
    }

    fn describe(&self) -> String {
        let dst = match &self.dst {
            Some((d, l)) => format!("{d}/{l}"),
            None if self.family() == libc::AF_INET6 as u8 => "default (::/0)".into(),
            None => "default".into(),
        };
        match &self.gateway {
            Some(g) => format!("{dst} via {g} dev {}", self.dev),
            None => format!("{dst} dev {}", self.dev),
        }
    }

    fn request(&self, ty: u16, flags: u16) -> Request {
        let fam = self.family();
        let mut m = [0u8; RTMSG_LEN];
        m[0] = fam;
        m[1] = self.dst.map(|(_, l)| l).unwrap_or(0);
        m[4] = RT_TABLE_MAIN as u8;
        m[5] = RTPROT_STATIC;
        m[6] = if self.gateway.is_some() { RT_SCOPE_UNIVERSE } else { RT_SCOPE_LINK };
        m[7] = RTN_UNICAST;
        let mut r = Request::new(ty, flags);
        r.bytes(&m);
        if let Some((d, _)) = &self.dst {
            r.attr(RTA_DST, &attr::ip_bytes(d));
        }
        if let Some(g) = &self.gateway {
            r.attr(RTA_GATEWAY, &attr::ip_bytes(g));
        }
        r.attr_u32(RTA_OIF, self.oif);
        r
    }
}

pub(crate) fn parse_route(p: &[u8]) -> Option<Route> {
    if p.len() < RTMSG_LEN {
        return None;
    }
    let mut r = Route {
        family: p[0],
        dst: None,
        dst_len: p[1],
        gateway: None,
        oif: None,
        table: p[4] as u32,
        kind: p[7],
        priority: None,
    };
    for (ty, v) in Attrs::after(p, RTMSG_LEN) {
        match ty {
            RTA_DST => r.dst = attr::ip_of(r.family, v),
            RTA_GATEWAY => r.gateway = attr::ip_of(r.family, v),
            RTA_OIF => r.oif = attr::u32_of(v),
            RTA_TABLE => r.table = attr::u32_of(v).unwrap_or(r.table),
            RTA_PRIORITY => r.priority = attr::u32_of(v),
            _ => {}
        }
    }
    Some(r)
}

impl Netlink {
    pub fn add_route(&mut self, s: &RouteSpec) -> Result<()> {
        self.request(s.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL))
            .map_err(|e| e.context("add route", Some(&s.describe())))
    }

    /// `Ok(false)` when there was no such route.
    pub fn delete_route(&mut self, s: &RouteSpec) -> Result<bool> {
        match self.request(s.request(RTM_DELROUTE, 0)) {
            Ok(()) => Ok(true),
            Err(NlError { errno: Errno(libc::ESRCH | libc::ENODEV), .. }) => Ok(false),
            Err(e) => Err(e.context("delete route", Some(&s.describe()))),
        }
    }

    /// Every route of every table, both families.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut out = Vec::new();
        let mut r = Request::new(RTM_GETROUTE, 0);
        r.bytes(&[0u8; RTMSG_LEN]);
        self.dump(r, &mut |ty, p| {
            if ty == RTM_NEWROUTE {
                out.extend(parse_route(p));
            }
            Ok(())
        })
        .map_err(|e| e.context("list routes", None))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_default_route_request_parses_back_as_a_default_route_via_its_gateway() {
        let s = RouteSpec {
            dst: None,
            gateway: Some("10.89.0.1".parse().unwrap()),
            oif: 2,
            dev: "eth0".into(),
        };
        assert_eq!(s.describe(), "default via 10.89.0.1 dev eth0");
        let r = parse_route(s.request(RTM_NEWROUTE, 0).payload()).expect("a route");
        assert!(r.is_default());
        assert_eq!(r.gateway, s.gateway);
        assert_eq!(r.oif, Some(2));
        assert_eq!(r.table, RT_TABLE_MAIN);
        assert_eq!(parse_route(&[0; 3]), None);
    }
}
