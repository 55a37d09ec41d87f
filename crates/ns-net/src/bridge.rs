//! The bridge driver: networks are Linux bridges with the gateway addresses, containers hang
//! on them by a veth pair, and the firewall table does NAT, isolation and published ports.
//!
//! Contract (each call synchronous, for a single-threaded helper):
//! - [`BridgeDriver::ensure_network`]: bridge up with its gateways, sysctls, base and network
//!   rules; idempotent. [`BridgeDriver::remove_network`] undoes it.
//! - [`BridgeDriver::validate`]: every check of a request, before anything is made.
//! - [`BridgeDriver::setup`]: allocation, veth (peer born in the container's namespace),
//!   addresses and routes inside, published ports; undone on failure, never half made.
//! - [`BridgeDriver::teardown`]: goes on past errors and returns them all.
//! - [`BridgeDriver::reconcile`]: given the live containers, removes stale allocations,
//!   published ports and host veths.

use std::collections::HashSet;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cidr::Cidr;
use crate::error::{Errno, ErrorList, NetError, Result};
use crate::firewall::{self, Nft, Op, Publish};
use crate::ipam::{self, Holder, Ipam, Lease};
use crate::netlink::{self, Netlink, Route, RouteSpec, Veth};
use crate::sysctl::{self, Sysctl};
use crate::types::{self, AttachRequest, Attachment, Network, PortMapping, SubnetSpec};

/// Where allocations live by default: one folder per network.
pub const STATE_DIR: &str = "/run/ns-net";
/// The alias of a bridge ns made (`ns-network:<name>`) and of a host veth (`ns:<id>`).
pub const BRIDGE_ALIAS_PREFIX: &str = "ns-network:";
pub const VETH_ALIAS_PREFIX: &str = "ns:";

/// What ensure_network found or made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkStatus {
    pub bridge: String,
    /// The bridge was made by this call (not found).
    pub created: bool,
    pub mtu: u32,
    /// The sysctls routing needs, as they are now, with what they were.
    pub sysctls: Vec<Sysctl>,
}

/// What reconcile removed, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// Containers whose allocations were stale and are gone.
    pub allocations: Vec<String>,
    pub published: Vec<Publish>,
    pub devices: Vec<String>,
    pub errors: ErrorList,
}

#[derive(Debug, Clone)]
pub struct BridgeDriver {
    pub state_dir: PathBuf,
    pub nft: Nft,
}

impl Default for BridgeDriver {
    fn default() -> Self {
        BridgeDriver { state_dir: PathBuf::from(STATE_DIR), nft: Nft::default() }
    }
}

fn random_mac() -> [u8; 6] {
    let mut m = [0u8; 6];
    // SAFETY: getrandom writes at most 6 bytes into m. On failure m stays zero and is still
    // made a valid address below (a fixed one, told apart by nothing else: rare and harmless).
    unsafe { libc::getrandom(m.as_mut_ptr().cast(), m.len(), 0) };
    m[0] = (m[0] & 0xfe) | 0x02; // unicast, locally administered
    m
}

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
    pub fn new(state_dir: impl Into<PathBuf>) -> BridgeDriver {
        BridgeDriver { state_dir: state_dir.into(), nft: Nft::default() }
    }

    pub fn ipam(&self, net: &Network) -> Ipam {
        Ipam::new(self.state_dir.join(&net.name))
    }

    /// The bridge up with its gateway addresses, the sysctls set, the base and network rules
    /// in place. Idempotent; a bridge it makes is removed again if a later step fails.
    pub fn ensure_network(&self, net: &Network) -> Result<NetworkStatus> {
        // One at a time: two containers started at once on a network that has no bridge yet
        // would both try to make it.
        let _lock = self.lock()?;
        let mut nl = Netlink::open()?;
        let found = nl.link(&net.bridge)?;
        let created = found.is_none();
        let br = match found {
            Some(l) if l.kind.as_deref() != Some("bridge") => {
                return Err(NetError::sys("create bridge", Some(&net.bridge), Errno(libc::EEXIST))
                    .with_hint(format!(
                        "a {} device of that name exists and is not a bridge",
                        l.kind.as_deref().unwrap_or("physical")
                    )))
            }
            Some(l) => l,
            None => {
                check_subnets_free(&mut nl, net, None)?;
                let mtu = match net.mtu {
                    Some(m) => m,
                    None => default_route_mtu(&mut nl)?.unwrap_or(1500),
                };
                let alias = format!("{BRIDGE_ALIAS_PREFIX}{}", net.name);
                nl.create_bridge(&net.bridge, Some(mtu), Some(random_mac()), Some(&alias))?;
                match nl.link(&net.bridge)? {
                    Some(l) => l,
                    None => {
                        return Err(NetError::sys(
                            "look up bridge",
                            Some(&net.bridge),
                            Errno(libc::ENODEV),
                        ))
                    }
                }
            }
        };
        let r = (|| {
            let have = nl.addresses()?;
            for p in &net.subnets {
                if !have.iter().any(|a| a.index == br.index && a.address == p.gateway) {
                    nl.add_address(&net.bridge, br.index, p.gateway, p.subnet.prefix)?;
                }
            }
            let sysctls = self.set_sysctls(net)?;
            if !br.is_up() {
                nl.set_up(&net.bridge, true)?;
            }
            self.nft.apply(
                &format!("set up the firewall of network {}", net.name),
                &[Op::EnsureBase, Op::AddNetwork(net.rules())],
            )?;
            Ok(sysctls)
        })();
        match r {
            Ok(sysctls) => {
                Ok(NetworkStatus { bridge: net.bridge.clone(), created, mtu: br.mtu, sysctls })
            }
            Err(e) => {
                if created {
                    let _ = nl.delete_link(&net.bridge);
                }
                Err(e)
            }
        }
    }

    /// An exclusive lock on `STATE_DIR/.lock`, held while a bridge is made or removed.
    fn lock(&self) -> Result<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.state_dir.join(".lock");
        let fail = |step: &str, e: std::io::Error| {
            NetError::sys(step, Some(&path.display().to_string()), Errno::from_io(&e))
        };
        std::fs::create_dir_all(&self.state_dir).map_err(|e| fail("create", e))?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| fail("open", e))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(f);
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(fail("lock", e));
            }
        }
    }

    fn set_sysctls(&self, net: &Network) -> Result<Vec<Sysctl>> {
        let mut out = Vec::new();
        let v4 = net.pool(false).is_some();
        let v6 = net.pool(true).is_some();
        if v4 && !net.internal {
            out.push(sysctl::set(&["net", "ipv4", "ip_forward"], "1")?);
        }
        if v6 && !net.internal {
            out.push(sysctl::set(&["net", "ipv6", "conf", "all", "forwarding"], "1")?);
        }
        if v6 {
            // No duplicate address detection on the bridge: its link-local address would stay
            // tentative for a second after it comes up, and a neighbour solicitation for a
            // container sent meanwhile goes out from :: (a DAD probe), which the container
            // does not answer as a question: the first packets to it would wait a second.
            out.push(sysctl::set(&["net", "ipv6", "conf", &net.bridge, "accept_dad"], "0")?);
        }
        if v4 {
            // The host reaches its published ports on 127.0.0.1: DNATed, such packets leave by
            // the bridge with a loopback source, which only route_localnet allows (and the
            // raw-pre rule keeps others from sending 127.0.0.1 in).
            out.push(sysctl::set(&["net", "ipv4", "conf", &net.bridge, "route_localnet"], "1")?);
        }
        Ok(out)
    }

    /// Removes a network: its rules, its bridge, its allocation folder; the whole table when it
    /// was the last network. Refused while a container holds an allocation on it.
    pub fn remove_network(&self, net: &Network) -> Result<(), ErrorList> {
        let mut errs = ErrorList::default();
        let _lock = match self.lock() {
            Ok(l) => l,
            Err(e) => {
                errs.push(e);
                return Err(errs);
            }
        };
        let ipam = self.ipam(net);
        if let Ok(holders) = ipam.holders() {
            let held: Vec<String> =
                holders.into_iter().filter(|(_, h)| *h).map(|(h, _)| h.container).collect();
            if !held.is_empty() {
                errs.push(
                    NetError::sys("remove network", Some(&net.name), Errno(libc::EBUSY))
                        .with_hint(format!("containers are attached to it: {}", held.join(", "))),
                );
                return Err(errs);
            }
        }
        errs.keep(self.nft.apply(
            &format!("remove the firewall of network {}", net.name),
            &[Op::RemoveNetwork(net.rules())],
        ));
        // The last network takes the table with it.
        match self.nft.list() {
            Ok(Some(t)) if bridges_in(&t).is_empty() => {
                errs.keep(self.nft.apply("remove the firewall table", &[Op::DeleteTable]));
            }
            Ok(_) => {}
            Err(e) => errs.push(e),
        }
        match Netlink::open() {
            Ok(mut nl) => {
                errs.keep(nl.delete_link(&net.bridge));
            }
            Err(e) => errs.push(e),
        }
        let dir = ipam.dir().to_path_buf();
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                errs.push(NetError::sys(
                    "remove allocations of",
                    Some(&dir.display().to_string()),
                    Errno::from_io(&e),
                ));
            }
        }
        errs.into_result()
    }

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

    /// Attaches a container: validated, then allocated, wired and published; everything done
    /// so far undone if a step fails. The caller keeps the [`Lease`] open for as long as the
    /// container lives (it is what tells a live allocation from a stale one) and persists the
    /// [`Attachment`] for teardown.
    pub fn setup(&self, net: &Network, req: &AttachRequest<'_>) -> Result<(Attachment, Lease)> {
        self.validate(net, req)?;
        let mut nl = Netlink::open()?;
        let br = match nl.link(&net.bridge)? {
            Some(b) if b.is_up() => b,
            // Gone (a reboot emptied /run and the bridges) or never made: made now, once.
            _ => {
                self.ensure_network(net)?;
                nl.link(&net.bridge)?.ok_or_else(|| {
                    NetError::sys("look up bridge", Some(&net.bridge), Errno(libc::ENODEV))
                })?
            }
        };
        let host_veth = types::host_veth_name(&net.name, req.container_id);
        let mac = req.mac.unwrap_or_else(random_mac);
        let mut att = Attachment {
            network: net.name.clone(),
            container_id: req.container_id.to_owned(),
            bridge: net.bridge.clone(),
            host_veth: host_veth.clone(),
            interface: req.interface.to_owned(),
            mac: netlink::format_mac(&mac),
            mtu: br.mtu,
            addresses: Vec::new(),
            gateways: net.subnets.iter().map(|p| p.gateway).collect(),
            published: Vec::new(),
        };
        // 1. Addresses. The record is written before anything else is made, so a crash at any
        //    later point leaves a stale allocation that names what to clean up.
        let wants: Vec<(&ipam::Pool, Option<IpAddr>)> = net
            .subnets
            .iter()
            .map(|p| (p, req.ips.iter().find(|ip| ip.is_ipv6() == p.subnet.is_ipv6()).copied()))
            .collect();
        let ipam = self.ipam(net);
        let planned = serde_json::to_value(&att).unwrap_or_default();
        let (lease, stale) = ipam.allocate(req.container_id, &wants, &planned)?;
        // What a dead holder left is cleaned before its addresses are used again.
        if !stale.is_empty() {
            let mut ignored = ErrorList::default();
            self.clean_stale(&mut nl, &stale, &mut ignored);
        }
        att.addresses = lease
            .addresses
            .iter()
            .zip(&net.subnets)
            .map(|(a, p)| Cidr { addr: *a, prefix: p.subnet.prefix })
            .collect();
        att.published = plan_published(req.container_id, &req.ports, &lease.addresses);
        let undo = |nl: &mut Netlink, veth: bool| {
            if veth {
                let _ = nl.delete_link(&host_veth);
            }
            let _ = ipam.release(req.container_id);
        };
        if let Err(e) = ipam.update_record(&lease, &serde_json::to_value(&att).unwrap_or_default())
        {
            undo(&mut nl, false);
            return Err(e);
        }
        // 2. The veth: host end on the bridge and up, the peer born in the container under
        //    its final name.
        let alias = format!("{VETH_ALIAS_PREFIX}{}", req.container_id);
        if let Err(e) = nl.create_veth(&Veth {
            name: &host_veth,
            peer: req.interface,
            peer_netns: Some(req.netns),
            master: Some(br.index),
            mtu: Some(br.mtu),
            mac: None,
            peer_mac: Some(mac),
            up: true,
            alias: Some(&alias),
            hairpin: true,
        }) {
            // EEXIST may be our own veth from a failed create: only delete what we made.
            undo(&mut nl, e.code != "EEXIST");
            return Err(e);
        }
        // 3. Inside: the interface up, its addresses, the default routes.
        if let Err(e) = configure_inside(req, &att) {
            undo(&mut nl, true);
            return Err(e);
        }
        // 4. Frames pass: the host end forwards on the bridge and the bridge has its carrier.
        if let Err(e) = wait_forwarding(&mut nl, &host_veth, &net.bridge) {
            undo(&mut nl, true);
            return Err(e);
        }
        // 5. Published ports, in one batch; nothing at all without them.
        if !att.published.is_empty() {
            if let Err(e) = self.nft.apply(
                &format!("publish ports of container {}", req.container_id),
                &[Op::Publish(att.published.clone())],
            ) {
                let e = self.explain_publish_failure(e, &att.published);
                undo(&mut nl, true);
                return Err(e);
            }
        }
        Ok((att, lease))
    }

    /// A publish that failed because a port is taken says which and by whom.
    fn explain_publish_failure(&self, e: NetError, ours: &[Publish]) -> NetError {
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

    /// Detaches a container: its published ports, its veth, its allocation. Goes on past
    /// errors and returns them all. The caller closes the lease afterwards (or has lost it).
    pub fn teardown(&self, net: &Network, att: &Attachment) -> Result<(), ErrorList> {
        let mut errs = ErrorList::default();
        if !att.published.is_empty() {
            errs.keep(self.nft.apply(
                &format!("remove published ports of container {}", att.container_id),
                &[Op::Unpublish(att.published.clone())],
            ));
        }
        match Netlink::open() {
            Ok(mut nl) => {
                errs.keep(nl.delete_link(&att.host_veth));
            }
            Err(e) => errs.push(e),
        }
        errs.keep(self.ipam(net).release(&att.container_id));
        errs.into_result()
    }

    fn clean_stale(
        &self,
        nl: &mut Netlink,
        stale: &[Holder],
        errs: &mut ErrorList,
    ) -> (Vec<Publish>, Vec<String>) {
        let mut unpublish = Vec::new();
        let mut devices = Vec::new();
        for h in stale {
            let Ok(att) = serde_json::from_value::<Attachment>(h.record.clone()) else { continue };
            unpublish.extend(att.published);
            if let Some(true) = errs.keep(nl.delete_link(&att.host_veth)) {
                devices.push(att.host_veth);
            }
        }
        if !unpublish.is_empty() {
            errs.keep(
                self.nft.apply("remove stale published ports", &[Op::Unpublish(unpublish.clone())]),
            );
        }
        (unpublish, devices)
    }

    /// Removes what containers that are gone left behind: allocations whose lock is free and
    /// whose container is not in `live`, published ports owned by no live or held container,
    /// and host veths (alias `ns:<id>`) of such containers. Goes on past errors.
    pub fn reconcile(&self, nets: &[Network], live: &HashSet<String>) -> ReconcileReport {
        let mut rep = ReconcileReport::default();
        let mut nl = match Netlink::open() {
            Ok(n) => n,
            Err(e) => {
                rep.errors.push(e);
                return rep;
            }
        };
        let mut held: HashSet<String> = HashSet::new();
        for net in nets {
            let ipam = self.ipam(net);
            let Some(stale) = rep.errors.keep(ipam.reclaim(&|id| live.contains(id))) else {
                continue;
            };
            let mut errs = ErrorList::default();
            let (_, devs) = self.clean_stale(&mut nl, &stale, &mut errs);
            rep.errors.0.extend(errs.0);
            rep.devices.extend(devs);
            rep.allocations.extend(stale.into_iter().map(|h| h.container));
            if let Some(hs) = rep.errors.keep(ipam.holders()) {
                held.extend(hs.into_iter().filter(|(_, h)| *h).map(|(h, _)| h.container));
            }
        }
        let alive = |id: &str| live.contains(id) || held.contains(id);
        // Published ports whose owner is gone (also those a stale record did not name).
        match self.nft.list() {
            Ok(Some(t)) => {
                let gone: Vec<Publish> =
                    firewall::published(&t).into_iter().filter(|p| !alive(&p.container)).collect();
                if !gone.is_empty()
                    && rep
                        .errors
                        .keep(
                            self.nft.apply(
                                "remove stale published ports",
                                &[Op::Unpublish(gone.clone())],
                            ),
                        )
                        .is_some()
                {
                    rep.published.extend(gone);
                }
            }
            Ok(None) => {}
            Err(e) => rep.errors.push(e),
        }
        // Host veths of containers that are gone (their namespace still alive somewhere).
        if let Some(links) = rep.errors.keep(nl.links()) {
            for l in links {
                let Some(id) = l.alias.as_deref().and_then(|a| a.strip_prefix(VETH_ALIAS_PREFIX))
                else {
                    continue;
                };
                if l.kind.as_deref() == Some("veth") && !alive(id) {
                    if let Some(true) = rep.errors.keep(nl.delete_link(&l.name)) {
                        rep.devices.push(l.name);
                    }
                }
            }
        }
        rep
    }
}

fn bridges_in(t: &serde_json::Value) -> Vec<String> {
    let items = t.get("nftables").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|i| i.get("set"))
        .filter(|s| s.get("name").and_then(|n| n.as_str()) == Some("bridges"))
        .flat_map(|s| s.get("elem").and_then(|e| e.as_array()).cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect()
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

/// How long a new port may take to forward before the attachment is given up. The kernel's
/// link watcher acts within microseconds when the link is looked up (below), and within a
/// second at worst when it is not; this only bounds a kernel that does neither.
const FORWARDING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Waits until frames really pass between the container and the bridge. A link's carrier is
/// acted on by the kernel's link watcher, asynchronously: until it has run, the end of the
/// veth that came up first (the host's) sends nothing (its queue is not yet attached), its
/// bridge port does not forward, and a bridge whose first port this is has no carrier
/// either, so what the host routes into it (the gateway's ARP answers, NAT's replies) is
/// dropped. The watcher delays a bridge's event by up to a second (it is no "urgent" one),
/// and the container's first packets would be lost meanwhile: a TCP connect then waits for
/// its SYN to be sent again a second later. Looking a link up makes the kernel run the
/// pending event of that link at once (rtnetlink's get synchronizes with the link watcher),
/// so the host end is looked up first (its port then forwards and the bridge gets its
/// carrier), then the bridge; where a kernel does not synchronize, this polls until the
/// watcher has run.
fn wait_forwarding(nl: &mut Netlink, host_veth: &str, bridge: &str) -> Result<()> {
    let start = std::time::Instant::now();
    let gone = |what: &str| NetError::sys("look up link", Some(what), Errno(libc::ENODEV));
    loop {
        let veth = nl.link(host_veth)?.ok_or_else(|| gone(host_veth))?;
        let br = nl.link(bridge)?.ok_or_else(|| gone(bridge))?;
        let veth_ok = veth.operstate == Some(netlink::IF_OPER_UP)
            && veth.port_state == Some(netlink::BR_STATE_FORWARDING);
        let br_ok = br.operstate == Some(netlink::IF_OPER_UP);
        if veth_ok && br_ok {
            return Ok(());
        }
        if start.elapsed() > FORWARDING_TIMEOUT {
            let (what, state) = if veth_ok {
                (bridge, format!("operstate {:?}", br.operstate))
            } else {
                (
                    host_veth,
                    format!("operstate {:?}, port state {:?}", veth.operstate, veth.port_state),
                )
            };
            return Err(NetError::sys(
                "wait for the bridge port to forward",
                Some(what),
                Errno(libc::ETIMEDOUT),
            )
            .with_hint(format!(
                "the link did not come up within {}s ({state})",
                FORWARDING_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// The container's side, through a netlink socket opened inside its namespace: the interface
/// up, its addresses, a default route per family via the gateway.
fn configure_inside(req: &AttachRequest<'_>, att: &Attachment) -> Result<()> {
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
