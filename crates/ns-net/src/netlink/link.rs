//! Links: create a bridge or a veth pair (its peer born inside another namespace under its
//! final name), change one (master, up/down, MTU, MAC, alias), delete, look up, dump.

use std::os::fd::{AsRawFd, BorrowedFd};

use super::attr::{self, Attrs, Request};
use super::socket::{Netlink, NlError, NlResult, NLM_F_CREATE, NLM_F_EXCL};
use crate::error::{Errno, Result};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const IFLA_INFO_SLAVE_DATA: u16 = 5;
const IFLA_BRPORT_STATE: u16 = 1;
const IFLA_BRPORT_MODE: u16 = 4;
/// `IF_OPER_UP`: the link has a carrier and the kernel's link watcher has acted on it.
pub const IF_OPER_UP: u8 = 6;
/// `BR_STATE_FORWARDING`: a bridge port that passes frames.
pub const BR_STATE_FORWARDING: u8 = 3;
const VETH_INFO_PEER: u16 = 1;
const IFINFOMSG_LEN: usize = 16;
pub(crate) const IFF_UP: u32 = libc::IFF_UP as u32;

/// A link as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`, … (`None` for a physical device or loopback).
    pub kind: Option<String>,
    pub mtu: u32,
    pub master: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// `IFF_*` flags: `flags & IFF_UP` is set when the link is administratively up.
    pub flags: u32,
    /// The free-text alias (`ifalias`): ns writes `ns:<container id>` on its host veths.
    pub alias: Option<String>,
    /// `IF_OPER_*` (RFC 2863): [`IF_OPER_UP`] once the kernel's link watcher has seen the
    /// carrier, which it does asynchronously, after the link came up.
    pub operstate: Option<u8>,
    /// `BR_STATE_*` of a bridge port (its STP state): [`BR_STATE_FORWARDING`] once the bridge
    /// passes its frames. `None` for a link that is no bridge port.
    pub port_state: Option<u8>,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// A veth pair to create: `name` here, `peer` in `peer_netns` (or here when `None`).
#[derive(Debug, Clone, Default)]
pub struct Veth<'a> {
    pub name: &'a str,
    pub peer: &'a str,
    pub peer_netns: Option<BorrowedFd<'a>>,
    /// Bridge (index) the local end is enslaved to at creation.
    pub master: Option<u32>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub peer_mac: Option<[u8; 6]>,
    /// The local end up at creation (the peer is brought up from inside its namespace).
    pub up: bool,
    pub alias: Option<&'a str>,
    /// Hairpin mode on the local end's bridge port (see [`LinkChange::hairpin`]).
    pub hairpin: bool,
}

/// Changes to an existing link; `None` leaves a property as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChange {
    pub up: Option<bool>,
    /// `Some(0)` releases the link from its master.
    pub master: Option<u32>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub alias: Option<String>,
    /// Hairpin mode of a bridge port: frames may leave by the port they came in on. Needed
    /// when the host runs bridged traffic through its IP hooks (`bridge-nf-call-iptables`):
    /// a container's packet to its own published port is DNATed at the bridge and must go
    /// back out of its own port.
    pub hairpin: Option<bool>,
}

fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut b = [0u8; IFINFOMSG_LEN];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&change.to_ne_bytes());
    b
}

/// A link of a `RTM_NEWLINK` payload; `None` when it is too short to be one.
pub(crate) fn parse_link(p: &[u8]) -> Option<Link> {
    if p.len() < IFINFOMSG_LEN {
        return None;
    }
    let index = u32::from_ne_bytes(p[4..8].try_into().ok()?);
    let flags = u32::from_ne_bytes(p[8..12].try_into().ok()?);
    let mut l = Link {
        index,
        name: String::new(),
        kind: None,
        mtu: 0,
        master: None,
        mac: None,
        flags,
        alias: None,
        operstate: None,
        port_state: None,
    };
    for (ty, v) in Attrs::after(p, IFINFOMSG_LEN) {
        match ty {
            IFLA_IFNAME => l.name = attr::string(v),
            IFLA_MTU => l.mtu = attr::u32_of(v).unwrap_or(0),
            IFLA_MASTER => l.master = attr::u32_of(v).filter(|m| *m != 0),
            IFLA_ADDRESS => l.mac = v.try_into().ok(),
            IFLA_IFALIAS => l.alias = Some(attr::string(v)).filter(|s| !s.is_empty()),
            IFLA_OPERSTATE => l.operstate = v.first().copied(),
            IFLA_LINKINFO => {
                for (t, k) in Attrs::new(v) {
                    match t {
                        IFLA_INFO_KIND => l.kind = Some(attr::string(k)),
                        IFLA_INFO_SLAVE_DATA => {
                            l.port_state = Attrs::new(k)
                                .find(|(t, _)| *t == IFLA_BRPORT_STATE)
                                .and_then(|(_, s)| s.first().copied())
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(l)
}

impl Netlink {
    /// Creates a bridge, down: the caller brings it up once it has its addresses.
    pub fn create_bridge(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
        alias: Option<&str>,
    ) -> Result<()> {
        let mut r = Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        r.bytes(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        if let Some(m) = mtu {
            r.attr_u32(IFLA_MTU, m);
        }
        if let Some(m) = mac {
            r.attr(IFLA_ADDRESS, &m);
        }
        r.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "bridge").end();
        self.request(r).map_err(|e| e.context("create bridge", Some(name)))?;
        if let Some(a) = alias {
            self.set_alias(name, a)?;
        }
        Ok(())
    }

    /// Creates a veth pair in one request: the local end enslaved (and up, if asked), the peer
    /// created directly in its namespace under its final name (never moved, never seen by the
    /// host under a temporary one). The peer is born down: the kernel would open it before the
    /// pair is linked (`ENOTCONN`), so it is brought up from inside its namespace.
    pub fn create_veth(&mut self, v: &Veth<'_>) -> Result<()> {
        let up = if v.up { IFF_UP } else { 0 };
        let mut r = Request::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        r.bytes(&ifinfomsg(0, up, up)).attr_str(IFLA_IFNAME, v.name);
        if let Some(m) = v.mtu {
            r.attr_u32(IFLA_MTU, m);
        }
        if let Some(m) = v.master {
            r.attr_u32(IFLA_MASTER, m);
        }
        if let Some(m) = v.mac {
            r.attr(IFLA_ADDRESS, &m);
        }
        r.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth").begin(IFLA_INFO_DATA);
        r.begin(VETH_INFO_PEER).bytes(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, v.peer);
        if let Some(m) = v.mtu {
            r.attr_u32(IFLA_MTU, m);
        }
        if let Some(m) = v.peer_mac {
            r.attr(IFLA_ADDRESS, &m);
        }
        if let Some(ns) = v.peer_netns {
            r.attr_u32(IFLA_NET_NS_FD, ns.as_raw_fd() as u32);
        }
        r.end().end().end();
        self.request(r).map_err(|e| {
            let what = match v.peer_netns {
                Some(_) => format!("{} (peer {} in the container's namespace)", v.name, v.peer),
                None => format!("{} (peer {})", v.name, v.peer),
            };
            e.context("create veth", Some(&what))
        })?;
        // What the kernel takes only on an existing link, in one more request.
        if v.alias.is_some() || v.hairpin {
            let c = LinkChange {
                alias: v.alias.map(str::to_owned),
                hairpin: v.hairpin.then_some(true),
                ..Default::default()
            };
            self.set_link(v.name, &c)
                .map_err(|e| e.context("configure the bridge port", Some(v.name)))?;
        }
        Ok(())
    }

    /// Sets the free-text alias of a link (the kernel takes none at creation).
    pub fn set_alias(&mut self, name: &str, alias: &str) -> Result<()> {
        self.set_link(name, &LinkChange { alias: Some(alias.to_owned()), ..Default::default() })
            .map_err(|e| e.context(&format!("set alias {alias:?} on"), Some(name)))
    }

    /// Changes a link found by name.
    pub fn set_link(&mut self, name: &str, c: &LinkChange) -> NlResult<()> {
        let (flags, change) = match c.up {
            Some(true) => (IFF_UP, IFF_UP),
            Some(false) => (0, IFF_UP),
            None => (0, 0),
        };
        let mut r = Request::new(RTM_NEWLINK, 0);
        r.bytes(&ifinfomsg(0, flags, change)).attr_str(IFLA_IFNAME, name);
        if let Some(m) = c.master {
            r.attr_u32(IFLA_MASTER, m);
        }
        if let Some(m) = c.mtu {
            r.attr_u32(IFLA_MTU, m);
        }
        if let Some(m) = c.mac {
            r.attr(IFLA_ADDRESS, &m);
        }
        if let Some(a) = &c.alias {
            r.attr_str(IFLA_IFALIAS, a);
        }
        if let Some(h) = c.hairpin {
            r.begin(IFLA_LINKINFO).begin(IFLA_INFO_SLAVE_DATA).attr_u8(IFLA_BRPORT_MODE, h as u8);
            r.end().end();
        }
        self.request(r)
    }

    /// Brings a link up or down.
    pub fn set_up(&mut self, name: &str, up: bool) -> Result<()> {
        self.set_link(name, &LinkChange { up: Some(up), ..Default::default() })
            .map_err(|e| e.context(if up { "bring up" } else { "bring down" }, Some(name)))
    }

    /// Enslaves `name` to the bridge `bridge` (index `bridge_index`).
    pub fn set_master(&mut self, name: &str, bridge: &str, bridge_index: u32) -> Result<()> {
        self.set_link(name, &LinkChange { master: Some(bridge_index), ..Default::default() })
            .map_err(|e| e.context(&format!("add {name} to bridge"), Some(bridge)))
    }

    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<()> {
        self.set_link(name, &LinkChange { mtu: Some(mtu), ..Default::default() })
            .map_err(|e| e.context(&format!("set mtu {mtu} on"), Some(name)))
    }

    pub fn set_mac(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        self.set_link(name, &LinkChange { mac: Some(mac), ..Default::default() })
            .map_err(|e| e.context(&format!("set mac {} on", format_mac(&mac)), Some(name)))
    }

    /// Deletes a link by name (a veth takes its peer with it). `Ok(false)` when it did not
    /// exist.
    pub fn delete_link(&mut self, name: &str) -> Result<bool> {
        let mut r = Request::new(RTM_DELLINK, 0);
        r.bytes(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        match self.request(r) {
            Ok(()) => Ok(true),
            Err(NlError { errno: Errno(libc::ENODEV), .. }) => Ok(false),
            Err(e) => Err(e.context("delete link", Some(name))),
        }
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>> {
        let mut r = Request::new(RTM_GETLINK, 0);
        r.bytes(&ifinfomsg(0, 0, 0)).attr_str(IFLA_IFNAME, name);
        match self.get(r) {
            Ok(replies) => Ok(replies
                .iter()
                .filter(|(t, _)| *t == RTM_NEWLINK)
                .find_map(|(_, p)| parse_link(p))),
            Err(NlError { errno: Errno(libc::ENODEV), .. }) => Ok(None),
            Err(e) => Err(e.context("look up link", Some(name))),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let mut out = Vec::new();
        let mut r = Request::new(RTM_GETLINK, 0);
        r.bytes(&ifinfomsg(0, 0, 0));
        self.dump(r, &mut |ty, p| {
            if ty == RTM_NEWLINK {
                out.extend(parse_link(p));
            }
            Ok(())
        })
        .map_err(|e| e.context("list links", None))?;
        Ok(out)
    }
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_reply_parses_name_kind_master_alias_and_short_ones_are_refused() {
        let mut r = Request::new(RTM_NEWLINK, 0);
        r.bytes(&ifinfomsg(7, IFF_UP, 0)).attr_str(IFLA_IFNAME, "ns0123");
        r.attr_u32(IFLA_MTU, 1400).attr_u32(IFLA_MASTER, 3).attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1]);
        r.attr_str(IFLA_IFALIAS, "ns:abc");
        r.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth").end();
        let l = parse_link(r.payload()).expect("a link");
        assert_eq!(
            l,
            Link {
                index: 7,
                name: "ns0123".into(),
                kind: Some("veth".into()),
                mtu: 1400,
                master: Some(3),
                mac: Some([2, 0, 0, 0, 0, 1]),
                flags: IFF_UP,
                alias: Some("ns:abc".into()),
                operstate: None,
                port_state: None,
            }
        );
        assert!(l.is_up());
        assert_eq!(parse_link(&r.payload()[..10]), None);
        assert_eq!(format_mac(&[2, 0, 0xab, 0, 0, 1]), "02:00:ab:00:00:01");
    }
}
