//! Container networks from the helper's side: the plan a spec carries (`io.ns.network`), the
//! attachment made at the launch's seam (`helper::launch::attach_before_release`), and its
//! teardown (end of a foreground run, the monitor seeing the container end, `delete`).
//!
//! One config model: whoever starts a container (`@ns/core`, the CLI, a bundle given to
//! `ns-oci`) writes the whole plan into the spec's `io.ns.network` annotation: the networks'
//! definitions as they are stored, the addresses asked for, aliases, published ports, DNS
//! settings, and the directories where the runtime's state goes. The runtime reads no
//! network store of its own.
//!
//! The attachment, per network in order (interfaces `eth0`, `eth1`, …; the first network
//! gets the default routes and the published ports): `ns_net::BridgeDriver::setup` (address
//! allocation, veth with its peer born in the child's namespace, the inside configured from
//! here), then `ns_dns::join` on a network with DNS. Then the container's `hosts`,
//! `resolv.conf` and `hostname` are written into the plan's directory; the spec binds them
//! over the container's own files (its `mounts`, which the child makes after it is released).
//! The attachment record, `DIR/attachments.json`, says exactly what teardown must undo; it
//! is written after each step, so a crash leaves a record of everything made.
//!
//! What the container holds while it lives: the allocations' locks (`ns_net::ipam::Lease`)
//! and a socket bound to each published host port (so that no program of the host takes a
//! port the container publishes, and a port one already uses is refused). All are
//! close-on-exec: the container never inherits them. They live in the helper, then in the
//! monitor of a created container; a lock that is free with no live container is what
//! `ns network prune` (reconcile) recognises as stale.

use std::collections::HashSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use ns_net::firewall::Proto;
use ns_net::{Attachment, BridgeDriver, Network, PortMapping};
use serde::{Deserialize, Serialize};

use crate::error::{Result, SetupError};
use crate::sys::{self, Errno};

/// How long a network's resolver stays with no container before it exits: containers run one
/// after another keep one resolver (starting and stopping one costs 10 to 30 ms a container).
pub const RESOLVER_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// The annotation that carries the plan.
pub const ANNOTATION: &str = "io.ns.network";
/// The record of what was attached, in the plan's directory.
pub const RECORD: &str = "attachments.json";
/// The search domain of the networks' resolvers: `web` is also `web.dns.ns`.
pub const DNS_DOMAIN: &str = "dns.ns";
/// The files made for the container, in the plan's directory, and where each is bound.
pub const FILES: [(&str, &str); 3] =
    [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf"), ("hostname", "/etc/hostname")];

/// One network a container joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Join {
    pub network: Network,
    /// Fixed addresses (`--ip`), at most one per family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    /// Further names the network's resolver answers for (`--network-alias`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The network has a resolver: names on it, and forwarding unless it is internal.
    #[serde(default)]
    pub dns: bool,
}

/// The plan of `io.ns.network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// The container's id on its networks: its allocations, its DNS records, the owner of its
    /// published ports.
    pub id: String,
    /// The name the resolvers answer for (and the hosts file lists).
    pub name: String,
    /// Where the attachment record and the container's files go (one folder per container).
    pub dir: String,
    /// The allocations' folder (one sub-folder per network).
    pub state_dir: String,
    /// The resolvers' folder (`NETWORK.json`, `.pid`, `.lock`, `.log`).
    pub dns_dir: String,
    pub networks: Vec<Join>,
    /// Published ports, on the first network; a host port 0 is one the kernel picks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// `--dns`, `--dns-search`, `--dns-option`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<String>,
    /// `--add-host` values (`NAME:IP`, `NAME:host-gateway`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_hosts: Vec<String>,
}

/// What teardown needs, as recorded in `DIR/attachments.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub state_dir: String,
    pub dns_dir: String,
    pub attachments: Vec<Recorded>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    pub network: Network,
    pub attachment: Attachment,
    /// Joined to the network's resolver (left again at teardown).
    #[serde(default)]
    pub dns: bool,
}

pub fn net_error(e: ns_net::NetError) -> SetupError {
    SetupError {
        step: e.step,
        path: e.path,
        errno: e.errno,
        code: e.code,
        message: e.message,
        hint: e.hint,
    }
}

pub fn dns_error(e: ns_dns::Error) -> SetupError {
    let code = match e.errno {
        Some(n) => Errno(n).name().to_owned(),
        None => "EINVAL".to_owned(),
    };
    SetupError {
        step: e.step,
        path: e.path,
        errno: e.errno,
        code,
        message: e.message,
        hint: e.hint,
    }
}

fn field(reason: impl AsRef<str>) -> SetupError {
    SetupError::config(format!("annotations.{ANNOTATION}"), reason)
}

/// The plan of a spec's annotations, checked; `None` without one. Pure: what needs the
/// kernel (a subnet against the host's routes, a port in use) is checked when attaching.
pub fn plan(
    annotations: &std::collections::BTreeMap<String, String>,
    new_netns: bool,
    euid: u32,
) -> Result<Option<Plan>> {
    let Some(text) = annotations.get(ANNOTATION) else { return Ok(None) };
    let p: Plan =
        serde_json::from_str(text).map_err(|e| field(format!("is not a network plan: {e}")))?;
    if !new_netns {
        return Err(field("needs a new network namespace (linux.namespaces: network)"));
    }
    if euid != 0 {
        return Err(field("bridge networks need root").with_hint(
            "rootless networking (pasta, slirp4netns) is not supported yet: run as root, or use --network none or --network host",
        ));
    }
    ns_net::ipam::check_container_id(&p.id).map_err(net_error)?;
    for (k, d) in [("dir", &p.dir), ("stateDir", &p.state_dir), ("dnsDir", &p.dns_dir)] {
        if !d.starts_with('/') || d.split('/').any(|c| c == "..") {
            return Err(field(format!("{k} must be an absolute path without ..")));
        }
    }
    if p.networks.is_empty() {
        return Err(field("names no network"));
    }
    let mut seen = HashSet::new();
    for (i, j) in p.networks.iter().enumerate() {
        if !seen.insert(&j.network.name) {
            return Err(field(format!("networks[{i}]: network {} is named twice", j.network.name)));
        }
        // The definition is checked as a new one would be (name, bridge, subnets, MTU).
        let specs: Vec<ns_net::SubnetSpec> = j
            .network
            .subnets
            .iter()
            .map(|s| ns_net::SubnetSpec {
                subnet: s.subnet,
                gateway: Some(s.gateway),
                ip_range: s.ip_range,
            })
            .collect();
        Network::new(
            &j.network.name,
            Some(&j.network.bridge),
            &specs,
            j.network.internal,
            j.network.mtu,
        )
        .map_err(|e| field(format!("networks[{i}].network: {}", e.message)))?;
    }
    if p.ports.iter().any(|m| m.host_port == 0 && m.count != 1) {
        return Err(field("a range of ports needs its host ports given"));
    }
    let overrides = ns_dns::DnsOverrides {
        servers: p.dns.clone(),
        search: p.dns_search.clone(),
        options: p.dns_options.clone(),
    };
    ns_dns::resolvconf::validate_overrides(&overrides).map_err(dns_error)?;
    for (i, h) in p.add_hosts.iter().enumerate() {
        ns_dns::parse_add_host(&format!("addHost[{i}]"), h).map_err(dns_error)?;
    }
    Ok(Some(p))
}

/// What a container holds while attached. Dropped, it tears the attachment down (the end
/// of a foreground run, of a monitor); [`Attached::keep`] leaves it for `delete` instead.
pub struct Attached {
    dir: PathBuf,
    record: Record,
    leases: Vec<OwnedFd>,
    sockets: Vec<OwnedFd>,
    keep: bool,
}

impl Attached {
    /// Gives the attachment up without undoing it (a container left to an engine, whose
    /// `delete` tears it down): the locks and the port sockets are closed, the record kept.
    pub fn keep(mut self) {
        self.keep = true;
        self.leases.clear();
        self.sockets.clear();
    }

    pub fn record(&self) -> &Record {
        &self.record
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for e in teardown(&self.dir, &self.record) {
            eprintln!("ns: {}", e.message);
        }
        // The locks go last: until then the allocation is not anyone else's to reclaim.
        self.leases.clear();
        self.sockets.clear();
    }
}

fn driver(state_dir: &str) -> BridgeDriver {
    BridgeDriver::new(state_dir)
}

fn launcher() -> ns_dns::Launcher {
    ns_dns::Launcher::new("/proc/self/exe", &["dns"])
}

fn save(dir: &Path, record: &Record) -> Result<()> {
    let data = serde_json::to_vec_pretty(record).unwrap_or_default();
    crate::files::write_atomic(&dir.join(RECORD), &data)
}

/// Attaches the container whose process is `pid` (its network namespace exists, it has not
/// been released) to the plan's networks. On failure, everything made so far is undone.
pub fn attach(plan: &Plan, pid: libc::pid_t, hostname: Option<&str>) -> Result<Attached> {
    let dir = PathBuf::from(&plan.dir);
    std::fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, &e))?;
    // Readable by the container's root, whoever it is on the host: the child opens the files
    // to bind them (their contents are no secret).
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
    }
    let mut att = Attached {
        dir: dir.clone(),
        record: Record {
            id: plan.id.clone(),
            state_dir: plan.state_dir.clone(),
            dns_dir: plan.dns_dir.clone(),
            attachments: Vec::new(),
        },
        leases: Vec::new(),
        sockets: Vec::new(),
        keep: false,
    };
    // Host ports first: one in use is refused before anything is made, and a port 0 becomes
    // the one the kernel picked.
    let mut ports = plan.ports.clone();
    for (i, m) in ports.iter_mut().enumerate() {
        att.sockets.extend(hold_ports(i, m)?);
    }
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns = sys::open(&ns_path, libc::O_RDONLY)
        .map_err(|e| SetupError::sys("open the network namespace", Some(&ns_path), e))?;
    let d = driver(&plan.state_dir);
    for (i, j) in plan.networks.iter().enumerate() {
        let ifname = format!("eth{i}");
        let req = ns_net::AttachRequest {
            container_id: &plan.id,
            netns: netns.as_fd(),
            interface: &ifname,
            ips: j.ips.clone(),
            ports: if i == 0 { ports.clone() } else { Vec::new() },
            mac: None,
            default_route: i == 0,
        };
        let (a, lease) = d.setup(&j.network, &req).map_err(|e| {
            let mut e = net_error(e);
            if e.step == "validate config" {
                // The driver names the request's fields; say which network's.
                e.message = format!("networks[{i}].{}", e.message);
            }
            e
        })?;
        att.leases.push(lease.into_fd());
        att.record.attachments.push(Recorded {
            network: j.network.clone(),
            attachment: a,
            dns: false,
        });
        save(&dir, &att.record)?;
    }
    // Names: each network with a resolver learns the container (and starts its resolver),
    // which forwards its questions to its own `--dns` servers if it has some.
    let upstreams = plan.dns.clone();
    for (i, j) in plan.networks.iter().enumerate().filter(|(_, j)| j.dns) {
        let a = &att.record.attachments[i].attachment;
        let files = ns_dns::NetworkFiles::new(&plan.dns_dir, &j.network.name).map_err(dns_error)?;
        let rec = ns_dns::ContainerRecord {
            id: plan.id.clone(),
            name: plan.name.clone(),
            aliases: j.aliases.clone(),
            ipv4: a.addresses.iter().filter_map(|c| v4(c.addr)).collect(),
            ipv6: a.addresses.iter().filter_map(|c| v6(c.addr)).collect(),
            dns: upstreams.clone(),
        };
        let mut config = ns_dns::Config::new("", a.gateways.clone());
        config.internal = j.network.internal;
        config.idle = RESOLVER_IDLE;
        let spec = ns_dns::ResolverSpec {
            config,
            domain: Some(DNS_DOMAIN.to_owned()),
            launcher: launcher(),
        };
        ns_dns::join(&files, rec, &spec).map_err(dns_error)?;
        att.record.attachments[i].dns = true;
        save(&dir, &att.record)?;
    }
    write_files(plan, &att.record, hostname)?;
    Ok(att)
}

fn v4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

fn v6(a: IpAddr) -> Option<Ipv6Addr> {
    match a {
        IpAddr::V6(a) => Some(a),
        IpAddr::V4(_) => None,
    }
}

fn io_error(step: &str, path: &Path, e: &std::io::Error) -> SetupError {
    SetupError::sys(
        step,
        Some(&path.display().to_string()),
        Errno(e.raw_os_error().unwrap_or(libc::EIO)),
    )
}

/// Binds the host ports of one published mapping (each port of a range) and keeps the
/// sockets: a port a program of the host uses is refused, and no program takes it while the
/// container publishes it. A host port 0 is set to the one the kernel gave.
fn hold_ports(i: usize, m: &mut PortMapping) -> Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for k in 0..m.count {
        let port = if m.host_port == 0 { 0 } else { m.host_port.saturating_add(k) };
        let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let proto = m.protocol.as_str();
        let (fd, got) = bind_port(SocketAddr::new(ip, port), m.protocol).map_err(|e| {
            let what =
                format!("{}{port}/{proto}", m.host_ip.map(|h| format!("{h}:")).unwrap_or_default());
            let field = format!("ports[{i}]");
            let reason = match e.0 {
                libc::EADDRINUSE => match publisher(port, m.protocol) {
                    Some(c) => format!("host port {what} is published by container {c} already"),
                    None => format!("host port {what} is in use on the host"),
                },
                libc::EADDRNOTAVAIL => format!("{ip} is no address of this host"),
                _ => format!("host port {what} cannot be bound: {} ({})", e.name(), e.describe()),
            };
            SetupError {
                step: "publish host port".into(),
                path: Some(field.clone()),
                errno: Some(e.0),
                code: e.name().to_owned(),
                message: format!("{field}: {reason}"),
                hint: None,
            }
        })?;
        if m.host_port == 0 {
            m.host_port = got;
        }
        out.push(fd);
    }
    Ok(out)
}

/// The container that publishes host port `port` already, by the firewall's elements.
fn publisher(port: u16, proto: Proto) -> Option<String> {
    let table = ns_net::firewall::Nft::default().list().ok()??;
    ns_net::firewall::published(&table)
        .into_iter()
        .find(|p| p.host_port == port && p.proto == proto)
        .map(|p| p.container)
}

/// A socket of `proto` bound to `addr` (close-on-exec), and the port it got.
fn bind_port(addr: SocketAddr, proto: Proto) -> std::result::Result<(OwnedFd, u16), Errno> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let ty = match proto {
        Proto::Tcp => libc::SOCK_STREAM,
        Proto::Udp => libc::SOCK_DGRAM,
    };
    let fam = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain syscall; the descriptor is owned below.
    let raw = unsafe { libc::socket(fam, ty | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(Errno::last());
    }
    // SAFETY: raw is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: zeroed sockaddr_storage is a valid (empty) address of any family.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for a sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from(*a.ip()).to_be() };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for a sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            let one: libc::c_int = 1;
            // SAFETY: setsockopt reads an int from a valid pointer. An IPv6 port stays IPv6
            // only: the IPv4 one is bound by a mapping of its own.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::IPPROTO_IPV6,
                    libc::IPV6_V6ONLY,
                    &one as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: bind reads `len` bytes of a valid address.
    if unsafe {
        libc::bind(fd.as_raw_fd(), &ss as *const _ as *const libc::sockaddr, len as libc::socklen_t)
    } != 0
    {
        return Err(Errno::last());
    }
    let mut got: libc::sockaddr_storage = ss;
    let mut glen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most glen bytes into got.
    if unsafe {
        libc::getsockname(fd.as_raw_fd(), &mut got as *mut _ as *mut libc::sockaddr, &mut glen)
    } != 0
    {
        return Err(Errno::last());
    }
    // SAFETY: the port sits at the same offset in sockaddr_in and sockaddr_in6.
    let port = u16::from_be(unsafe { (*(&got as *const _ as *const libc::sockaddr_in)).sin_port });
    Ok((fd, port))
}

fn overrides(plan: &Plan) -> ns_dns::DnsOverrides {
    ns_dns::DnsOverrides {
        servers: plan.dns.clone(),
        search: plan.dns_search.clone(),
        options: plan.dns_options.clone(),
    }
}

fn read_host_resolv_conf() -> ns_dns::ResolvConf {
    ns_dns::ResolvConf::parse(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
}

/// The gateways of the container's networks with a resolver, in order: its nameservers.
fn resolver_addresses(record: &Record) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for r in record.attachments.iter().filter(|r| r.dns) {
        for g in &r.attachment.gateways {
            if r.attachment.addresses.iter().any(|a| a.addr.is_ipv6() == g.is_ipv6()) {
                out.push(*g);
            }
        }
    }
    out
}

/// The container's `hosts`, `resolv.conf` and `hostname`, written into the plan's folder
/// (in place: a file already bound keeps its inode).
fn write_files(plan: &Plan, record: &Record, hostname: Option<&str>) -> Result<()> {
    let ipv6 =
        record.attachments.iter().any(|r| r.attachment.addresses.iter().any(|a| a.addr.is_ipv6()));
    let host = read_host_resolv_conf();
    let nameservers = resolver_addresses(record);
    let mode = if nameservers.is_empty() {
        ns_dns::DnsMode::Direct { ipv6 }
    } else {
        ns_dns::DnsMode::Resolver { nameservers: &nameservers, domain: Some(DNS_DOMAIN) }
    };
    let resolv =
        ns_dns::container_resolv_conf(&host, &overrides(plan), &mode).map_err(dns_error)?;
    let hostname = hostname.unwrap_or(&plan.name);
    let mut extra = Vec::new();
    for (i, h) in plan.add_hosts.iter().enumerate() {
        extra.push(ns_dns::parse_add_host(&format!("addHost[{i}]"), h).map_err(dns_error)?);
    }
    let mut names = vec![plan.name.clone()];
    for j in &plan.networks {
        for a in &j.aliases {
            if !names.contains(a) {
                names.push(a.clone());
            }
        }
    }
    let hosts = ns_dns::container_hosts(&ns_dns::HostsSpec {
        hostname: hostname.to_owned(),
        domainname: None,
        addresses: record
            .attachments
            .iter()
            .flat_map(|r| r.attachment.addresses.iter().map(|a| a.addr))
            .collect(),
        names,
        extra_hosts: extra,
        host_gateway: record
            .attachments
            .first()
            .and_then(|r| r.attachment.gateways.iter().find(|g| g.is_ipv4()).copied()),
        ipv6,
    })
    .map_err(dns_error)?;
    let dir = Path::new(&plan.dir);
    for (name, text) in
        [("hosts", hosts), ("resolv.conf", resolv.content), ("hostname", format!("{hostname}\n"))]
    {
        write_in_place(&dir.join(name), text.as_bytes())?;
    }
    Ok(())
}

fn write_in_place(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io_error("write", path, &e))?;
    f.write_all(data).map_err(|e| io_error("write", path, &e))
}

/// Undoes what a record says: each network's resolver left, its attachment torn down, then
/// the folder removed. Goes on past errors and returns them all.
pub fn teardown(dir: &Path, record: &Record) -> Vec<SetupError> {
    let mut errs = Vec::new();
    let d = driver(&record.state_dir);
    for r in record.attachments.iter().rev() {
        if r.dns {
            match ns_dns::NetworkFiles::new(&record.dns_dir, &r.network.name) {
                Ok(files) => {
                    if let Err(e) = ns_dns::leave_idle(&files, &record.id) {
                        errs.push(dns_error(e));
                    }
                }
                Err(e) => errs.push(dns_error(e)),
            }
        }
        if let Err(list) = d.teardown(&r.network, &r.attachment) {
            errs.extend(list.0.into_iter().map(net_error));
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            errs.push(io_error("remove", dir, &e));
        }
    }
    errs
}

/// The teardown of a container whose spec had a plan, from its record (for `delete`): nothing
/// when there is no record (torn down already, or never attached).
pub fn teardown_recorded(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<SetupError> {
    let Some(text) = annotations.get(ANNOTATION) else { return Vec::new() };
    let Ok(plan) = serde_json::from_str::<Plan>(text) else { return Vec::new() };
    let dir = PathBuf::from(&plan.dir);
    let record = match std::fs::read(dir.join(RECORD)) {
        Ok(b) => match serde_json::from_slice::<Record>(&b) {
            Ok(r) => r,
            Err(_) => return Vec::new(),
        },
        Err(_) => return Vec::new(),
    };
    if record.id != plan.id {
        return Vec::new();
    }
    teardown(&dir, &record)
}

// ------------------------------------------------------------------ network operations
//
// What `@ns/core`'s `networks` calls (through the addon, one JSON in and one out): the
// definitions are its own to store; the kernel's side of each operation is here.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewArgs {
    name: String,
    #[serde(default)]
    bridge: Option<String>,
    #[serde(default)]
    subnets: Vec<ns_net::SubnetSpec>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    mtu: Option<u32>,
    /// Subnets taken already (by other networks): a default range must not overlap them.
    #[serde(default)]
    avoid: Vec<ns_net::cidr::Cidr>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NetArgs {
    network: Network,
    state_dir: String,
    #[serde(default)]
    dns_dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ReconcileArgs {
    networks: Vec<Network>,
    /// Containers that exist (in a state directory): theirs is not stale, lock or not.
    live: Vec<String>,
    state_dir: String,
    dns_dir: String,
    /// The folder of the containers' network folders (`Plan::dir`'s parent).
    containers_dir: String,
}

fn args<T: serde::de::DeserializeOwned>(op: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| SetupError::config(op, format!("bad arguments: {e}")))
}

fn root_only(op: &str) -> Result<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        return Err(SetupError::sys(op, None, Errno(libc::EPERM)).with_hint(
            "bridge networks need root; rootless networking (pasta, slirp4netns) is not supported yet: use --network none or --network host",
        ));
    }
    Ok(())
}

fn ipam_holders(d: &BridgeDriver, net: &Network) -> Result<Vec<(ns_net::ipam::Holder, bool)>> {
    d.ipam(net).holders().map_err(net_error)
}

/// One operation on networks, its arguments and its answer as JSON:
///
/// - `new` `{name, bridge?, subnets, internal, mtu?}`: the network checked, its bridge named
///   (no kernel call); with no subnet, the default network's choice: the first of ns's
///   ranges that no route of the host touches;
/// - `ensure` `{network, stateDir}`: its bridge, gateways, sysctls and rules in place; the
///   status (`sysctls` set, with what they were);
/// - `status` `{network, stateDir}`: the bridge as it is (or `null`) and the allocations:
///   `{bridge: {name, up, mtu}|null, containers: [{id, addresses, live}]}`;
/// - `remove` `{network, stateDir, dnsDir}`: refused (`EBUSY`) while a container holds an
///   allocation; else its rules, bridge, allocations and resolver gone;
/// - `reconcile` `{networks, live, stateDir, dnsDir, containersDir}`: what containers that
///   are gone left (allocations, published ports, host veths, DNS entries, folders) removed.
pub fn call(op: &str, json: &str) -> Result<serde_json::Value> {
    match op {
        "new" => {
            let a: NewArgs = args(op, json)?;
            let net = if a.subnets.is_empty() {
                default_range(&a)?
            } else {
                Network::new(&a.name, a.bridge.as_deref(), &a.subnets, a.internal, a.mtu)
                    .map_err(net_error)?
            };
            Ok(json_of(&net))
        }
        "ensure" => {
            root_only("create the network's bridge")?;
            let a: NetArgs = args(op, json)?;
            let st = driver(&a.state_dir).ensure_network(&a.network).map_err(net_error)?;
            Ok(json_of(&st))
        }
        "status" => {
            let a: NetArgs = args(op, json)?;
            let d = driver(&a.state_dir);
            let bridge = ns_net::netlink::Netlink::open()
                .and_then(|mut nl| nl.link(&a.network.bridge))
                .ok()
                .flatten()
                .map(|l| serde_json::json!({ "name": l.name, "up": l.is_up(), "mtu": l.mtu }));
            let containers: Vec<serde_json::Value> = ipam_holders(&d, &a.network)?
                .into_iter()
                .map(|(h, live)| {
                    serde_json::json!({ "id": h.container, "addresses": h.addresses, "live": live })
                })
                .collect();
            Ok(serde_json::json!({ "bridge": bridge, "containers": containers }))
        }
        "remove" => {
            root_only("remove the network")?;
            let a: NetArgs = args(op, json)?;
            let d = driver(&a.state_dir);
            d.remove_network(&a.network).map_err(|list| {
                list.0.into_iter().next().map(net_error).unwrap_or_else(|| {
                    SetupError::sys("remove the network", Some(&a.network.name), Errno(libc::EIO))
                })
            })?;
            if let Some(dns_dir) = &a.dns_dir {
                if let Ok(files) = ns_dns::NetworkFiles::new(dns_dir, &a.network.name) {
                    ns_dns::remove_network(&files).map_err(dns_error)?;
                }
            }
            Ok(serde_json::Value::Null)
        }
        "reconcile" => {
            root_only("reconcile the networks")?;
            let a: ReconcileArgs = args(op, json)?;
            Ok(reconcile(&a))
        }
        _ => Err(SetupError::config("op", format!("unknown network operation {op:?}"))),
    }
}

/// A network on the first of ns's ranges that no route of the host touches and no other
/// network has (docker's default pools are chosen the same way).
fn default_range(a: &NewArgs) -> Result<Network> {
    let mut nl = ns_net::netlink::Netlink::open().map_err(net_error)?;
    for s in ns_net::types::DEFAULT_SUBNETS {
        let Ok(subnet) = s.parse::<ns_net::cidr::Cidr>() else { continue };
        if a.avoid.iter().any(|c| c.overlaps(&subnet)) {
            continue;
        }
        let spec = ns_net::SubnetSpec { subnet, gateway: None, ip_range: None };
        let net = Network::new(&a.name, a.bridge.as_deref(), &[spec], a.internal, a.mtu)
            .map_err(net_error)?;
        if ns_net::bridge::check_subnets_free(&mut nl, &net, None).is_ok() {
            return Ok(net);
        }
    }
    Err(SetupError::config(
        "subnet",
        "every default range overlaps a route of the host or another network",
    )
    .with_hint("give one: --subnet"))
}

fn json_of<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

fn reconcile(a: &ReconcileArgs) -> serde_json::Value {
    let d = driver(&a.state_dir);
    let live: HashSet<String> = a.live.iter().cloned().collect();
    // Who still holds an allocation (a container starting, or a foreground run) is alive too.
    let mut alive = live.clone();
    for n in &a.networks {
        if let Ok(hs) = ipam_holders(&d, n) {
            alive.extend(hs.into_iter().filter(|(_, held)| *held).map(|(h, _)| h.container));
        }
    }
    let rep = d.reconcile(&a.networks, &live);
    let mut errors: Vec<SetupError> = rep.errors.0.iter().cloned().map(net_error).collect();
    // Names of containers that are gone, out of every network's records.
    let mut dns = Vec::new();
    for n in &a.networks {
        let Ok(files) = ns_dns::NetworkFiles::new(&a.dns_dir, &n.name) else { continue };
        let Ok(Some(doc)) = ns_dns::records::read_records(&files.records()) else { continue };
        for c in doc.containers.iter().filter(|c| !alive.contains(&c.id)) {
            match ns_dns::leave(&files, &c.id) {
                Ok(_) => dns.push(format!("{}/{}", n.name, c.id)),
                Err(e) => errors.push(dns_error(e)),
            }
        }
    }
    // The folders (records, files) of containers that are gone.
    let mut folders = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&a.containers_dir) {
        for e in rd.flatten() {
            let Some(id) = e.file_name().to_str().map(str::to_owned) else { continue };
            if !alive.contains(&id) && std::fs::remove_dir_all(e.path()).is_ok() {
                folders.push(id);
            }
        }
    }
    serde_json::json!({
        "allocations": rep.allocations,
        "published": rep.published,
        "devices": rep.devices,
        "dns": dns,
        "folders": folders,
        "errors": errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(plan: serde_json::Value) -> std::collections::BTreeMap<String, String> {
        [(ANNOTATION.to_owned(), plan.to_string())].into_iter().collect()
    }

    fn plan_json() -> serde_json::Value {
        serde_json::json!({
            "id": "c1", "name": "c1", "dir": "/run/ns/net/containers/c1",
            "stateDir": "/run/ns/net/ipam", "dnsDir": "/run/ns/dns",
            "networks": [{ "network": {
                "name": "web", "bridge": "ns-web", "internal": false,
                "subnets": [{ "subnet": "10.89.0.0/24", "gateway": "10.89.0.1" }] }, "dns": true }],
            "ports": [{ "hostPort": 8080, "containerPort": 80, "protocol": "tcp" }],
        })
    }

    #[test]
    fn a_plan_is_read_from_its_annotation_and_every_refusal_names_why() {
        let p = plan(&annotations(plan_json()), true, 0).unwrap().expect("a plan");
        assert_eq!((p.id.as_str(), p.networks.len(), p.ports[0].count), ("c1", 1, 1));
        assert!(plan(&Default::default(), true, 0).unwrap().is_none(), "no annotation, no plan");
        let refused = |v: serde_json::Value, netns: bool, euid: u32| {
            plan(&annotations(v), netns, euid).unwrap_err().message
        };
        assert!(refused(plan_json(), false, 0).contains("needs a new network namespace"));
        assert!(refused(plan_json(), true, 1000).contains("bridge networks need root"));
        let mut v = plan_json();
        v["networks"][0]["network"]["subnets"][0]["subnet"] = "10.89.0.1/24".into();
        assert!(refused(v, true, 0).contains("networks[0].network: subnets[0].subnet:"));
        let mut v = plan_json();
        v["addHosts"] = serde_json::json!(["db:nope"]);
        assert!(refused(v, true, 0).starts_with("addHost[0]: "));
        let mut v = plan_json();
        v["dir"] = "rel/dir".into();
        assert!(refused(v, true, 0).contains("dir must be an absolute path"));
        let mut v = plan_json();
        let first = v["networks"][0].clone();
        v["networks"].as_array_mut().unwrap().push(first);
        assert!(refused(v, true, 0).contains("network web is named twice"));
        let mut v = plan_json();
        v["surprise"] = true.into();
        assert!(refused(v, true, 0).contains("unknown field `surprise`"));
        let mut v = plan_json();
        v["ports"][0] = serde_json::json!({ "hostPort": 0, "containerPort": 80, "count": 2, "protocol": "udp" });
        assert!(refused(v, true, 0).contains("a range of ports needs its host ports given"));
    }
}
